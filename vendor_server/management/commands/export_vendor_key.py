"""``manage.py export_vendor_key``: the public key and fingerprint schools pin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vendor_server import keys


class Command(BaseCommand):
    help = "Print the vendor's armored public key and the fingerprint schools pin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", help="Also write the armored key to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            fingerprint = keys.signing_fingerprint()
            armored = keys.export_public_key(fingerprint)
        except keys.SigningKeyError as e:
            raise CommandError(str(e)) from e
        if options["output"]:
            Path(options["output"]).write_text(armored)
        self.stdout.write(armored)
        self.stdout.write(f"Fingerprint to pin: {fingerprint}")
        self.stdout.write(
            f"  (schools set UPDATES_VENDOR_KEY_FINGERPRINTS={fingerprint})"
        )
