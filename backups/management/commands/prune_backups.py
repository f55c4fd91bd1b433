"""manage.py prune_backups [--dry-run]: apply the retention policy."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import actions
from clms_updates.actions import ActionRefused, Actor


class Command(BaseCommand):
    help = "Delete backups outside the retention policy (BACKUP_KEEP_*)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            gone = actions.prune_backups(
                actor=Actor.command(), dry_run=options["dry_run"]
            )
        except ActionRefused as e:
            raise CommandError(str(e)) from e
        verb = "Would delete" if options["dry_run"] else "Deleted"
        for backup in gone:
            self.stdout.write(
                f"{verb} {backup.name} ({backup.status}, {backup.created_at:%Y-%m-%d %H:%M})"
            )
        self.stdout.write(f"{verb} {len(gone)} backup(s).")
