"""``manage.py rollback_update --reason TEXT``: go back to the version before, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import ActionRefused, Actor
from updates import actions, pipeline
from updates.models import UpdateRun


class Command(BaseCommand):
    help = (
        "Roll CLMS back to the version installed before the last successful update, "
        "in the foreground with progress; audited with the reason. Exits non-zero "
        "unless the rollback succeeded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reason", default="", help="why (required; kept in the audit log)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = actions.roll_back(
                actor=Actor.command(), reason=options["reason"], background=False
            )
        except ActionRefused as e:
            raise CommandError(f"Nothing was changed: {e}") from None
        self.stdout.write(
            f"Run {run.pk}: rollback {run.from_version} -> {run.to_version}"
        )
        pipeline.execute_run(run.pk)
        run.refresh_from_db()
        self.stdout.write(run.log.rstrip())
        if run.state != UpdateRun.State.SUCCEEDED:
            raise CommandError(
                f"Run {run.pk} {run.state} ({run.error_code}): {run.error_message}"
            )
        self.stdout.write(
            self.style.SUCCESS(f"CLMS {run.to_version} is running again.")
        )
