"""manage.py create_backup: make (and by default verify) a backup now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import actions
from backups.errors import BackupError
from clms_updates.actions import ActionRefused, Actor


class Command(BaseCommand):
    help = "Back up the CLMS database now, then verify it (unless --no-verify)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reason", default="manual (command)")
        parser.add_argument("--no-verify", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("Backing up the CLMS database ...")
        try:
            backup = actions.create_backup(
                actor=Actor.command(),
                reason=options["reason"],
                verify=not options["no_verify"],
                background=False,
            )
        except (ActionRefused, BackupError) as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Created {backup.name} (id {backup.pk}).")
        if not options["no_verify"]:
            self.stdout.write(f"Verified {backup.name}.")
        self.stdout.write(
            f"{backup.file_name} {backup.size} bytes sha256 {backup.sha256}"
        )
