"""``manage.py vendor_restore``: a vendor backup back into a (new) vendor server.

Restores the database dump written by ``vendor_backup`` (checked against its
manifest first, replaced in one transaction, row counts compared) and, with
``--gnupg``, unpacks the GnuPG home into an empty ``VENDOR_GNUPG_HOME``.
Stop the web, worker and beat processes first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups.errors import BackupError
from backups.standalone import restore_database
from vendor_server import indexing, keys


class Command(BaseCommand):
    help = "Restore a vendor backup: the database dump and, optionally, the GnuPG home."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dump", type=Path, nargs="?", help="vendor-<time>.dump.zst")
        parser.add_argument(
            "--resume-index",
            action="store_true",
            help="Only move the index sequence above anything served (a database "
            "restored elsewhere, now DATABASE_URL).",
        )
        parser.add_argument("--database-url", default="", help="Default: DATABASE_URL.")
        parser.add_argument(
            "--gnupg", type=Path, help="vendor-<time>-gnupg.tar.gz to unpack too."
        )
        parser.add_argument(
            "--sequence-at-least",
            type=int,
            default=0,
            help="When the cache (Redis) was lost too: the highest index sequence "
            "an agent shows; the next index is above it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["resume_index"]:
            self._resume(options)
            return
        if options["dump"] is None:
            raise CommandError("Name the dump to restore (vendor-<time>.dump.zst).")
        try:
            if options["gnupg"]:
                keys.restore_home(options["gnupg"])
            counts = restore_database(
                options["database_url"] or settings.DATABASE_URL, options["dump"]
            )
        except (BackupError, keys.SigningKeyError, OSError) as e:
            raise CommandError(f"The restore failed: {e}") from None
        self.stdout.write(
            f"Restored {sum(counts.values())} rows in {len(counts)} tables"
            + (
                f" and the GnuPG home into {keys.gnupg_home()}"
                if options["gnupg"]
                else ""
            )
            + "."
        )
        if not options["database_url"]:
            self._resume(options)
        else:
            self.stdout.write(
                "Restored into another database than DATABASE_URL: before it serves, "
                "run `manage.py vendor_restore --resume-index` with DATABASE_URL "
                "pointing at it."
            )

    def _resume(self, options: dict[str, Any]) -> None:
        # Agents refuse a lower sequence than they saw: go above anything served.
        sequence = indexing.resume_after_restore(at_least=options["sequence_at_least"])
        self.stdout.write(
            f"The index goes on at sequence {sequence}. Start the server again."
        )
