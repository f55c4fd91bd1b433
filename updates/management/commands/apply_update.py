"""``manage.py apply_update VERSION``: apply a verified release now, in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from updates import pipeline, scheduling
from updates.models import AgentState, AvailableRelease, UpdateRun


class Command(BaseCommand):
    help = (
        "Apply a verified available release now (no maintenance window check), "
        "printing progress; exits non-zero unless the run succeeded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="a version `check_updates` verified")

    def handle(self, *args: Any, **options: Any) -> None:
        version = options["version"]
        release = AvailableRelease.objects.filter(version=version).first()
        if release is None:
            raise CommandError(
                f"{version} is not a verified available release; run "
                "`manage.py check_updates` first and use a version it found."
            )
        if release.version == AgentState.load().installed_version:
            raise CommandError(f"CLMS {version} is already installed.")
        try:
            run = scheduling.create_run(
                to_version=release.version,
                release=release,
                at=timezone.now(),
                forced=True,
                trigger=False,
            )
        except scheduling.SchedulingError as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"Run {run.pk}: {run.from_version} -> {run.to_version}")
        pipeline.execute_run(run.pk)
        run.refresh_from_db()
        self.stdout.write(run.log.rstrip())
        if run.state != UpdateRun.State.SUCCEEDED:
            raise CommandError(
                f"Run {run.pk} {run.state}"
                + (
                    f" ({run.error_code}): {run.error_message}"
                    if run.error_code
                    else ""
                )
            )
        self.stdout.write(self.style.SUCCESS(f"CLMS {run.to_version} is installed."))
