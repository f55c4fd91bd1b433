"""``manage.py vendor_root``: write, sign and publish the root of trust.

Where the root keys live (an offline machine with this project and the keys'
GnuPG home, no database needed)::

    manage.py vendor_root draft --version 1 --root-key A --root-key B \\
        --root-threshold 2 --release-key C --release-key D \\
        --release-threshold 2 --index-key E --out root-1.json
    manage.py vendor_root sign root-1.json --key A   # each holder in turn

On the vendor server::

    manage.py vendor_root publish root-1.json        # reads root-1.json.asc
    manage.py vendor_root show
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import ActionRefused, Actor
from clms_updates.manifest import ManifestError, Role
from clms_updates.manifest.roles import ROLES
from clms_updates.manifest.signing import SignatureError, normalise_fingerprint
from vendor_server import actions, keys, roots


def add_signing_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a ``sign`` step: the file, the key, where the key lives."""
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--key", required=True, help="Fingerprint of the key to sign with."
    )
    parser.add_argument(
        "--gnupghome",
        type=Path,
        help="The GnuPG home holding that key (default: VENDOR_GNUPG_HOME).",
    )


def sign(command: BaseCommand, options: dict[str, Any]) -> None:
    """Append the signature of ``--key`` over ``file`` to ``file.asc`` and say so."""
    try:
        target, count = keys.sign_file(
            options["file"],
            fingerprint=options["key"],
            gnupghome=options["gnupghome"] or keys.gnupg_home(),
            passphrase=settings.VENDOR_KEY_PASSPHRASE,
        )
    except (SignatureError, keys.SigningKeyError) as e:
        raise CommandError(str(e)) from None
    command.stdout.write(
        f"Signed {options['file']} with {normalise_fingerprint(options['key'])}: "
        f"{target} now holds {count} signature(s)."
    )


class Command(BaseCommand):
    help = "Write (draft), sign, publish or show the vendor's root of trust."

    def add_arguments(self, parser: CommandParser) -> None:
        steps = parser.add_subparsers(dest="step", required=True)
        draft = steps.add_parser("draft", help="Write an unsigned root document.")
        draft.add_argument("--version", type=int, required=True)
        for role in ROLES:
            draft.add_argument(
                f"--{role}-key",
                action="append",
                required=True,
                dest=f"{role}_keys",
                help=f"Fingerprint of a {role} key (repeat for each).",
            )
            draft.add_argument(
                f"--{role}-threshold",
                type=int,
                default=1,
                dest=f"{role}_threshold",
                help=f"How many {role} keys must sign (default 1).",
            )
        draft.add_argument(
            "--gnupghome",
            type=Path,
            help="Where the public keys of every listed key are (default "
            "VENDOR_GNUPG_HOME); they are embedded in the root.",
        )
        draft.add_argument("--out", type=Path, required=True)
        add_signing_arguments(steps.add_parser("sign", help="Add your signature."))
        publish = steps.add_parser("publish", help="Store the next root (server).")
        publish.add_argument("file", type=Path)
        publish.add_argument(
            "--signature", type=Path, help="Default: the file's name plus .asc."
        )
        steps.add_parser("show", help="Print the current root's roles.")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['step']}")(options)

    def _draft(self, options: dict[str, Any]) -> None:
        roles = {
            role: Role(
                tuple(normalise_fingerprint(f) for f in options[f"{role}_keys"]),
                options[f"{role}_threshold"],
            )
            for role in ROLES
        }
        try:
            root = roots.draft_root(
                options["version"],
                roles,
                home=options["gnupghome"] or keys.gnupg_home(),
            )
        except (ManifestError, keys.SigningKeyError) as e:
            raise CommandError(str(e)) from None
        options["out"].write_bytes(root.to_bytes())
        self.stdout.write(
            f"Wrote root {root.version} to {options['out']}. Each root key holder of "
            "the current root and of this one signs it with `vendor_root sign`."
        )

    def _sign(self, options: dict[str, Any]) -> None:
        sign(self, options)

    def _publish(self, options: dict[str, Any]) -> None:
        path: Path = options["file"]
        signature_path = options["signature"] or path.with_name(path.name + ".asc")
        try:
            data = path.read_bytes()
            signature = signature_path.read_text()
        except OSError as e:
            raise CommandError(f"{e.filename} cannot be read ({e.strerror})") from None
        try:
            row = actions.publish_root(data, signature, actor=Actor.command())
        except ActionRefused as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"Published {row}; schools follow it at their next check.")
        self._show(options)

    def _show(self, options: dict[str, Any]) -> None:
        try:
            root = roots.current_root()
        except keys.SigningKeyError as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"Root {root.version}:")
        for name in ROLES:
            role = root.role(name)
            self.stdout.write(
                f"  {name}: {role.threshold} of {len(role.keys)}: {', '.join(role.keys)}"
            )
