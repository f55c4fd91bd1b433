"""``manage.py self_update_driver RUN --state FILE``: the second half of an agent update.

Started by the agent itself in a container of its own (``updates.selfupdate``);
not meant to be typed by hand. Safe to run again: it carries on from the last
finished step recorded in FILE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from updates.selfupdate import driver


class Command(BaseCommand):
    help = "Drive the hand-off of an agent update run (started by the agent itself)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument("--state", type=Path, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        state: Path = options["state"]
        if not state.is_file():
            raise CommandError(f"{state} does not exist; nothing to drive")
        outcome = driver.drive(options["run"], state)
        self.stdout.write(f"Agent update run {options['run']}: {outcome}")
