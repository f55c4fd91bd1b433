"""``manage.py update_agent [VERSION]``: update CLMS Updates itself (or say why not)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import ActionRefused, Actor
from updates import actions
from updates.selfupdate.checking import offered


class Command(BaseCommand):
    help = (
        "Update the agent to VERSION (default: the newest verified agent release); "
        "it starts now, or as soon as the run or backup in its way has ended. "
        "Without a release to install it says which agent runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", nargs="?", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        version = options["version"]
        if not version:
            release = offered()
            if release is None:
                self.stdout.write(
                    f"CLMS Updates {settings.AGENT_VERSION} runs; no newer agent "
                    "release is known (check for updates first)."
                )
                return
            version = release.version
        try:
            run = actions.update_agent(version, actor=Actor.command())
        except ActionRefused as e:
            raise CommandError(f"Nothing was changed: {e}") from None
        if run is None:
            self.stdout.write(
                f"The update to CLMS Updates {version} waits for the run or backup "
                "in progress; it starts by itself when that has ended."
            )
            return
        self.stdout.write(
            f"Run {run.pk}: CLMS Updates {run.from_version} -> {run.to_version} "
            "started; follow it on the run's page."
        )
