"""``manage.py rollback_update``: go back to the version before the last update, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from clms_updates import audit
from updates import pipeline, scheduling
from updates.models import AgentState, UpdateRun


class Command(BaseCommand):
    help = (
        "Roll CLMS back to the version installed before the last successful update "
        "(its images; the data stays), in the foreground with progress; audited. "
        "Exits non-zero unless the rollback succeeded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reason", default="", help="why (recorded in the audit log)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        installed = AgentState.load().installed_version
        target = scheduling.previous_version()
        if target is None:
            raise CommandError(
                f"CLMS {installed} was not installed by an update this agent recorded, "
                "so there is no earlier version to go back to."
            )
        try:
            run = scheduling.create_run(
                to_version=target,
                release=None,
                at=timezone.now(),
                kind=UpdateRun.Kind.ROLLBACK,
                forced=True,
                trigger=False,
            )
        except scheduling.SchedulingError as e:
            raise CommandError(str(e)) from None
        audit.record(
            "updates.rollback",
            target=f"run {run.pk}",
            from_version=run.from_version,
            to_version=run.to_version,
            reason=options["reason"],
            via="rollback_update command",
        )
        self.stdout.write(f"Run {run.pk}: rollback {installed} -> {target}")
        pipeline.execute_run(run.pk)
        run.refresh_from_db()
        self.stdout.write(run.log.rstrip())
        if run.state != UpdateRun.State.SUCCEEDED:
            raise CommandError(
                f"Run {run.pk} {run.state} ({run.error_code}): {run.error_message}"
            )
        self.stdout.write(self.style.SUCCESS(f"CLMS {target} is running again."))
