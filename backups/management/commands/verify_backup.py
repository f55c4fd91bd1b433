"""manage.py verify_backup ID: prove a backup restores."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import actions
from backups.errors import BackupError
from clms_updates.actions import ActionRefused, Actor


class Command(BaseCommand):
    help = "Verify a backup: checksum, archive listing, restore test, row counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup = actions.verify_backup(
                options["backup_id"], actor=Actor.command(), background=False
            )
        except (ActionRefused, BackupError) as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Verified {backup.name}.")
