"""Who may sign what: the root document, its roles and thresholds, and key rotation.

The roles follow The Update Framework:

- ``root``: the keys that may sign the next root document (kept offline);
- ``release``: the keys whose signatures make a release manifest installable
  (release managers, kept off the vendor web server);
- ``index``: the online key that signs freshness and visibility (the index, a
  bundle's file list).

Each role lists primary key fingerprints and a threshold: a document counts
only when that many *distinct* listed keys signed it. Several signatures travel
in one text, as armored blocks one after another (``join_signatures``).

A school pins the fingerprints of the first root. Before any root is published
the pins stand for a root of version 0 in which they hold every role with a
threshold of 1 (``implicit_root``), which is exactly one key doing everything.
Every later root must be version + 1 and be signed by a threshold of the
previous root's root keys *and* of its own (``check_next_root``), so a stolen
old key alone cannot rotate, and a rotation the new key holders did not sign
is refused. Roots carry the armored public keys they list; importing a key
never trusts it, only a role listing its fingerprint does.

A root has no expiry: a fleet whose root expired would stop updating at once
(the outage other projects had when signing keys expired). Freshness is the
index's job; it expires within days and is re-signed by the online key.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clms_updates.manifest.schema import (
    ManifestError,
    _expect_format,
    _expect_keys,
    _load_json,
    canonical_json,
    format_time,
    parse_time,
)
from clms_updates.manifest.signing import (
    SignatureError,
    import_public_keys,
    normalise_fingerprint,
    verify_detached,
)

ROOT_KIND = "root"
ROOT_FORMAT = 1
ROLES = ("root", "release", "index")
FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")
# No root lists more keys than this; a signature text carries at most this many.
MAX_KEYS = 20
_SIGNATURE_BLOCK = re.compile(
    r"-----BEGIN PGP SIGNATURE-----.*?-----END PGP SIGNATURE-----", re.DOTALL
)


@dataclass(frozen=True)
class Role:
    """The keys of one role and how many of them must sign."""

    keys: tuple[str, ...]
    threshold: int

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Role:
        _expect_keys(data, where, required={"keys", "threshold"})
        keys = data["keys"]
        if not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS:
            raise ManifestError(
                f"{where}.keys: expected a list of 1 to {MAX_KEYS} key fingerprints"
            )
        for i, key in enumerate(keys):
            if not isinstance(key, str) or not FINGERPRINT.match(key):
                raise ManifestError(
                    f"{where}.keys[{i}]: expected a 40-character upper-case hex "
                    "fingerprint"
                )
        if len(set(keys)) != len(keys):
            raise ManifestError(f"{where}.keys: a key is listed twice")
        threshold = data["threshold"]
        if (
            not isinstance(threshold, int)
            or isinstance(threshold, bool)
            or not 1 <= threshold <= len(keys)
        ):
            raise ManifestError(
                f"{where}.threshold: expected a whole number from 1 to {len(keys)} "
                "(the number of keys)"
            )
        return cls(keys=tuple(keys), threshold=threshold)


@dataclass(frozen=True)
class RootDocument:
    """Version ``version`` of the root of trust: the keys of every role."""

    version: int
    created_at: datetime
    roles: Mapping[str, Role]
    public_keys: str = ""

    def role(self, name: str) -> Role:
        return self.roles[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_at": format_time(self.created_at),
            "format": ROOT_FORMAT,
            "kind": ROOT_KIND,
            "public_keys": self.public_keys,
            "roles": {name: self.roles[name].to_dict() for name in ROLES},
            "version": self.version,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> RootDocument:
        _expect_keys(
            data,
            "root",
            required={"format", "kind", "version", "created_at", "roles"},
            optional={"public_keys"},
        )
        _expect_format(data, ROOT_KIND, "root", formats=(ROOT_FORMAT,))
        version = data["version"]
        if (
            not isinstance(version, int)
            or isinstance(version, bool)
            or not 1 <= version <= 2**31
        ):
            raise ManifestError("root.version: expected a whole number from 1 to 2^31")
        roles = data["roles"]
        _expect_keys(roles, "root.roles", required=set(ROLES))
        public_keys = data.get("public_keys", "")
        if not isinstance(public_keys, str):
            raise ManifestError("root.public_keys: expected armored public key text")
        return cls(
            version=version,
            created_at=parse_time(data["created_at"], "root.created_at"),
            roles={
                name: Role.from_dict(roles[name], f"root.roles.{name}")
                for name in ROLES
            },
            public_keys=public_keys,
        )


def parse_root(data: bytes) -> RootDocument:
    """Parse root bytes (their signatures are checked by ``check_next_root``)."""
    return RootDocument.from_dict(_load_json(data, "root"))


def implicit_root(pinned: Iterable[str]) -> RootDocument:
    """Root version 0: the pinned keys hold every role, any one of them suffices."""
    keys = tuple(sorted({normalise_fingerprint(f) for f in pinned if f.strip()}))
    if not keys:
        raise SignatureError(
            "no vendor key is pinned, so nothing can be trusted; set "
            "UPDATES_VENDOR_KEY_FINGERPRINTS to the fingerprint(s) the vendor published"
        )
    role = Role(keys=keys, threshold=1)
    return RootDocument(
        version=0,
        created_at=datetime(1970, 1, 1, tzinfo=UTC),
        roles=dict.fromkeys(ROLES, role),
    )


def split_signatures(text: str | bytes) -> list[str]:
    """The armored signature blocks in ``text``, in order (at most ``MAX_KEYS``)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    return _SIGNATURE_BLOCK.findall(text)[:MAX_KEYS]


def join_signatures(signatures: Iterable[str]) -> str:
    """One text holding every signature (each block once, order kept)."""
    seen: list[str] = []
    for signature in signatures:
        for block in split_signatures(signature):
            if block not in seen:
                seen.append(block)
    return "\n".join(seen) + ("\n" if seen else "")


def role_signers(
    data: bytes,
    signatures: str | bytes,
    *,
    role: Role,
    gnupghome: str | os.PathLike[str],
    what: str,
) -> tuple[list[str], list[str]]:
    """The distinct keys of ``role`` whose signatures over ``data`` verify, and why
    each other signature did not (no threshold applied)."""
    signers: set[str] = set()
    problems: list[str] = []
    for block in split_signatures(signatures):
        try:
            signers.add(
                verify_detached(
                    data, block, gnupghome=gnupghome, pinned=role.keys, what=what
                )
            )
        except SignatureError as e:
            problems.append(str(e))
    return sorted(signers), problems


def verify_threshold(
    data: bytes,
    signatures: str | bytes,
    *,
    role: Role,
    role_name: str,
    gnupghome: str,
    what: str,
) -> list[str]:
    """The distinct keys of ``role`` that signed ``data``; refuse below the threshold."""
    if not split_signatures(signatures):
        raise SignatureError(
            f"{what}: the signature is missing or is not an armored PGP signature"
        )
    signers, problems = role_signers(
        data, signatures, role=role, gnupghome=gnupghome, what=what
    )
    if len(signers) >= role.threshold:
        return signers
    if role.threshold == 1 and len(problems) == 1:
        raise SignatureError(problems[0])
    detail = f"; {problems[0]}" if problems else ""
    raise SignatureError(
        f"{what}: needs valid signatures of {role.threshold} of the {len(role.keys)} "
        f"{role_name} key(s), has {len(signers)}{detail}; nothing was applied"
    )


def check_next_root(
    trusted: RootDocument, data: bytes, signatures: str, *, gnupghome: str
) -> RootDocument:
    """The root after ``trusted`` if ``data`` is it, signed by both key sets; else refuse."""
    new = parse_root(data)
    if new.version != trusted.version + 1:
        raise ManifestError(
            f"root {new.version} does not follow root {trusted.version}: roots are "
            "accepted one version at a time"
        )
    if new.public_keys.strip():
        # A key that cannot be imported simply cannot sign.
        with contextlib.suppress(SignatureError):
            import_public_keys(gnupghome, new.public_keys)
    for role, whose in (
        (trusted.role("root"), "previous"),
        (new.role("root"), "its own"),
    ):
        try:
            verify_threshold(
                data,
                signatures,
                role=role,
                role_name=f"{whose} root",
                gnupghome=gnupghome,
                what=f"root {new.version}",
            )
        except SignatureError as e:
            raise SignatureError(
                f"root {new.version} is not signed by {role.threshold} of the {whose} "
                f"root keys ({e})"
            ) from None
    return new
