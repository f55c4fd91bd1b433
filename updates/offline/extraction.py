"""Reading a bundle's ZIP without trusting it: entry checks, bounded reads, safe writes.

``ZipFile.extractall`` quietly rewrites dangerous names (drops ``..``, strips a
leading ``/``) instead of refusing them, and follows no limits, so it is never
used here. Every entry is checked from the central directory before anything
is written; then each file is streamed to a path that is proven to lie inside
the work folder, with its size capped and its sha256 compared.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from updates.offline.errors import BundleNotReady, BundleRefused

_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$")
_ALLOWED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# Small entries compress at silly ratios (a file of zeros); the ratio rule
# applies to entries above this size, and to the archive as a whole.
RATIO_FLOOR_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What a bundle must stay within (``UPDATES_BUNDLE_*``)."""

    max_entries: int
    max_total_bytes: int
    max_ratio: int


def open_bundle(path: Path) -> zipfile.ZipFile:
    """Open the ZIP's central directory; a truncated or non-ZIP file is refused."""
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise BundleRefused(
            f"{path.name} is not a complete ZIP file ({e}): it is truncated or "
            "corrupt, perhaps copied before the download finished; copy it again",
            code="corrupt",
        ) from None
    except OSError as e:
        raise BundleRefused(
            f"{path.name} cannot be read ({e})", code="unreadable"
        ) from None


def check_name(name: str) -> None:
    """Refuse an entry name that could land outside the work folder or collide."""
    if not name or "\x00" in name or "\\" in name:
        raise BundleRefused(
            f"entry {name!r} has an empty name, a NUL or a backslash",
            code="unsafe_name",
        )
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleRefused(
            f"entry {name!r} is an absolute path; a bundle may only hold relative "
            "names inside itself",
            code="unsafe_name",
        )
    parts = name.rstrip("/").split("/")
    if any(part in ("..", ".") for part in parts):
        raise BundleRefused(
            f"entry {name!r} climbs out of the bundle with '..' (zip-slip)",
            code="unsafe_name",
        )
    if not all(_COMPONENT.match(part) for part in parts):
        raise BundleRefused(
            f"entry {name!r} has an empty or unusual path component; names are "
            "letters, digits, '.', '_', '+' and '-'",
            code="unsafe_name",
        )


def check_entries(archive: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    """Check every entry from the central directory; return the file entries.

    Refuses: too many entries, unsafe names, duplicates (also by case), links
    and special files, encryption, unknown compression, a total above the
    limit, and a compression ratio above the limit (a zip bomb).
    """
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise BundleRefused(
            f"the bundle has {len(infos)} entries, more than the limit of "
            f"{limits.max_entries} (UPDATES_BUNDLE_MAX_ENTRIES)",
            code="too_many_entries",
        )
    seen: set[str] = set()
    files: list[zipfile.ZipInfo] = []
    total = 0
    compressed = 0
    for info in infos:
        name = info.filename
        check_name(name)
        key = name.rstrip("/").casefold()
        if key in seen:
            raise BundleRefused(
                f"entry {name!r} appears twice (or differs only in case); which one "
                "would be used is ambiguous",
                code="duplicate_name",
            )
        seen.add(key)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BundleRefused(
                f"entry {name!r} is a symbolic link; bundles may not hold links",
                code="link",
            )
        if info.is_dir():
            continue
        # Only type bits other than "regular" are refused: ZIP writers often
        # store permissions alone (0o600, no type).
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise BundleRefused(
                f"entry {name!r} is not a regular file (mode {oct(mode)})",
                code="special_file",
            )
        if info.flag_bits & 0x1:
            raise BundleRefused(f"entry {name!r} is encrypted", code="encrypted")
        if info.compress_type not in _ALLOWED_METHODS:
            raise BundleRefused(
                f"entry {name!r} uses compression method {info.compress_type}; only "
                "stored and deflate are accepted",
                code="compression",
            )
        total += info.file_size
        compressed += info.compress_size
        if (
            info.file_size > RATIO_FLOOR_BYTES
            and info.file_size > limits.max_ratio * max(info.compress_size, 1)
        ):
            raise BundleRefused(
                f"entry {name!r} expands {info.file_size // max(info.compress_size, 1)}"
                f" times, above the limit of {limits.max_ratio} "
                "(UPDATES_BUNDLE_MAX_RATIO): it looks like a zip bomb",
                code="zip_bomb",
            )
        files.append(info)
    if total > limits.max_total_bytes:
        raise BundleRefused(
            f"the bundle unpacks to {total} bytes, more than the limit of "
            f"{limits.max_total_bytes} (UPDATES_BUNDLE_MAX_MB)",
            code="too_large",
        )
    if total > RATIO_FLOOR_BYTES and total > limits.max_ratio * max(compressed, 1):
        raise BundleRefused(
            f"the bundle expands {total // max(compressed, 1)} times overall, above "
            f"the limit of {limits.max_ratio} (UPDATES_BUNDLE_MAX_RATIO): it looks "
            "like a zip bomb",
            code="zip_bomb",
        )
    return files


def read_small(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """Read one small entry into memory (never to disk), at most ``limit`` bytes."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise BundleRefused(
            f"the bundle has no {name}: it is not a signed CLMS bundle (unsigned, or "
            "not built with build_bundle)",
            code="unsigned",
        ) from None
    if info.file_size > limit:
        raise BundleRefused(
            f"{name} is {info.file_size} bytes, too large for a signed document",
            code="too_large",
        )
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise BundleRefused(
            f"{name} cannot be read from the bundle ({e}): the file is corrupt or "
            "truncated",
            code="corrupt",
        ) from None
    if len(data) > limit:
        raise BundleRefused(f"{name} is larger than it claims", code="corrupt")
    return data


def safe_target(root: Path, name: str) -> Path:
    """The path ``name`` would take under ``root``; refused if it resolves outside."""
    root = root.resolve()
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise BundleRefused(
            f"entry {name!r} would be written outside the work folder",
            code="unsafe_name",
        )
    return target


def extract_file(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    root: Path,
    *,
    sha256: str,
    size: int,
) -> Path:
    """Stream one entry into ``root`` and check its size and sha256 against the signed list.

    The file is created exclusively and without following links, so a link
    planted in the work folder cannot redirect the write.
    """
    target = safe_target(root, info.filename)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise BundleRefused(
            f"entry {info.filename!r} would overwrite another entry",
            code="duplicate_name",
        ) from None
    try:
        with os.fdopen(fd, "wb") as out, archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                written += len(chunk)
                if written > size:
                    raise BundleRefused(
                        f"entry {info.filename!r} holds more than the {size} bytes "
                        "the signed contents list (tampered, or a zip bomb)",
                        code="tampered",
                    )
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise BundleRefused(
            f"entry {info.filename!r} cannot be unpacked ({e}): the bundle is "
            "corrupt or truncated",
            code="corrupt",
        ) from None
    except OSError as e:
        raise BundleNotReady(
            f"entry {info.filename!r} could not be written to {root} ({e}); free "
            "some disk space or fix the folder's permissions, the bundle is retried",
        ) from None
    if written != size or digest.hexdigest() != sha256:
        raise BundleRefused(
            f"entry {info.filename!r} does not match the signed contents list "
            f"(sha256 {digest.hexdigest()[:16]}…, {written} bytes; expected "
            f"{sha256[:16]}…, {size} bytes): a file inside the bundle was changed "
            "after signing",
            code="tampered",
        )
    return target
