"""manage.py create_backup: make (and by default verify) a backup now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import creating, operations, verifying
from backups.errors import BackupError


class Command(BaseCommand):
    help = "Back up the CLMS database now, then verify it (unless --no-verify)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reason", default="manual (command)")
        parser.add_argument("--no-verify", action="store_true")
        parser.add_argument("--clms-version", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        backup = creating.new_backup(reason=options["reason"])
        self.stdout.write(f"Backing up into {backup.name} ...")
        version = options["clms_version"] or operations.installed_clms_version()
        try:
            creating.run_backup(backup.pk, clms_version=version)
            self.stdout.write(f"Created {backup.name} (id {backup.pk}).")
            if not options["no_verify"]:
                verifying.verify_backup(backup.pk)
                operations.copy_if_configured(backup.pk)
                self.stdout.write(f"Verified {backup.name}.")
        except BackupError as e:
            raise CommandError(str(e)) from e
        backup.refresh_from_db()
        self.stdout.write(
            f"{backup.file_name} {backup.size} bytes sha256 {backup.sha256}"
        )
