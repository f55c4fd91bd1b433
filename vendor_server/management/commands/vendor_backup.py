"""``manage.py vendor_backup``: the vendor server's database and GnuPG home, verified.

Run it daily (a cron job or a systemd timer; ``deploy/vendor/`` documents it)
and copy the folder off the machine. The database dump is made and proved by
the same engine as a school's CLMS backups (a scratch restore gives its row
counts); the GnuPG home holds the online signing key, so the folder is private.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from backups.errors import BackupError
from backups.standalone import backup_database
from vendor_server import keys


class Command(BaseCommand):
    help = "Back the vendor's database and GnuPG home up into a folder, verified."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, required=True, help="The folder.")
        parser.add_argument(
            "--database-url",
            default="",
            help="The database to back up (default: DATABASE_URL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["output"]
        name = f"vendor-{timezone.now():%Y%m%d-%H%M%S}"
        try:
            manifest = backup_database(
                options["database_url"] or settings.DATABASE_URL, folder, name
            )
            files = keys.archive_home(folder / f"{name}-gnupg.tar.gz")
        except (BackupError, keys.SigningKeyError, OSError) as e:
            raise CommandError(f"The vendor backup failed: {e}") from None
        rows = sum(manifest["row_counts"].values())
        self.stdout.write(
            f"Backed up the database to {folder / manifest['file']} ({manifest['size']} "
            f"bytes, {rows} rows in {len(manifest['row_counts'])} tables, restored into "
            f"a scratch database to prove it) and the GnuPG home ({files} files) to "
            f"{folder / (name + '-gnupg.tar.gz')}. It holds the online signing key: "
            "keep the folder private."
        )
