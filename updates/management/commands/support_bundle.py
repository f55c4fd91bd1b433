"""Write a support bundle for the vendor's support (secrets removed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import ActionRefused, Actor
from updates import actions


class Command(BaseCommand):
    help = (
        "Write a ZIP of what the vendor's support needs (versions, runs and their "
        "logs, checks, backups, audit, settings, the compose project, containers), "
        "with every secret replaced."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output", type=Path, help="where to write it (default: its own name here)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            name, data = actions.make_support_bundle(actor=Actor.command())
        except ActionRefused as e:
            raise CommandError(str(e)) from None
        target: Path = options["output"] or Path(name)
        try:
            target.write_bytes(data)
        except OSError as e:
            raise CommandError(
                f"the bundle could not be written to {target}: {e}"
            ) from None
        self.stdout.write(
            f"Wrote {target} ({len(data) // 1024} KiB). Secrets are replaced by "
            "[Filtered]; look inside before you send it."
        )
