"""``manage.py vendor_keygen``: create the vendor signing key."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from vendor_server import keys


class Command(BaseCommand):
    help = (
        "Create an ed25519 signing key in VENDOR_GNUPG_HOME (passphrase from "
        "VENDOR_KEY_PASSPHRASE or VENDOR_KEY_PASSPHRASE_FILE) and print its fingerprint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="CLMS Vendor Signing Key")
        parser.add_argument("--email", default="releases@clms.invalid")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing when the home already holds a secret key.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        existing = keys.secret_fingerprints()
        if existing and options["if_missing"]:
            self.stdout.write(f"A signing key already exists: {existing[0]}")
            return
        try:
            fingerprint = keys.generate_key(
                options["name"],
                options["email"],
                passphrase=settings.VENDOR_KEY_PASSPHRASE,
            )
        except keys.SigningKeyError as e:
            raise CommandError(str(e)) from e
        self.stdout.write(
            f"Created signing key {fingerprint} in {keys.gnupg_home()}.\n"
            "Publish it to schools with `manage.py export_vendor_key`."
        )
        if existing:
            self.stdout.write(
                f"The home now holds {len(existing) + 1} keys: set "
                f"VENDOR_SIGNING_KEY={fingerprint} to sign with the new one."
            )
