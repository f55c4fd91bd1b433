"""manage.py restore_backup ID: restore a verified backup into the CLMS database."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import actions
from backups.errors import BackupError
from clms_updates.actions import ActionRefused, Actor


class Command(BaseCommand):
    help = "Replace the CLMS database's contents with a verified backup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup_id", type=int)
        parser.add_argument("--reason", default="manual (command)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup = actions.restore_backup(
                options["backup_id"],
                actor=Actor.command(),
                reason=options["reason"],
                background=False,
            )
        except (ActionRefused, BackupError) as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Restored {backup.name} into the CLMS database.")
