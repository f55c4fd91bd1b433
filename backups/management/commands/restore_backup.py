"""manage.py restore_backup ID: restore a verified backup into the CLMS database."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import restoring
from backups.errors import BackupError


class Command(BaseCommand):
    help = "Replace the CLMS database's contents with a verified backup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup_id", type=int)
        parser.add_argument("--reason", default="manual (command)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup = restoring.restore_backup(
                options["backup_id"], reason=options["reason"]
            )
        except BackupError as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Restored {backup.name} into the CLMS database.")
