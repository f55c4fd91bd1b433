"""manage.py verify_backup ID: prove a backup restores."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import verifying
from backups.errors import BackupError
from backups.models import Backup


class Command(BaseCommand):
    help = "Verify a backup: checksum, archive listing, restore test, row counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        if not Backup.objects.filter(pk=options["backup_id"]).exists():
            raise CommandError(f"There is no backup with id {options['backup_id']}.")
        try:
            backup = verifying.verify_backup(options["backup_id"])
        except BackupError as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Verified {backup.name}.")
