"""``manage.py apply_update VERSION``: apply a verified release now, in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import ActionRefused, Actor
from updates import actions, pipeline
from updates.models import UpdateRun


class Command(BaseCommand):
    help = (
        "Apply a verified available release now (outside the maintenance windows "
        "that is an audited override), printing progress; exits non-zero unless "
        "the run succeeded. The same rules as the page and the API apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="a version `check_updates` verified")
        parser.add_argument(
            "--force",
            action="store_true",
            help="retry a version that was rolled back (an audited override)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = actions.update_now(
                options["version"],
                actor=Actor.command(),
                force=options["force"],
                background=False,
            )
        except ActionRefused as e:
            raise CommandError(f"Nothing was changed: {e}") from None
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
