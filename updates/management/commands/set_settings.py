"""``manage.py set_settings NAME=VALUE …``: give the values a release asks for."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import ActionRefused, Actor
from updates import actions, presenting


class Command(BaseCommand):
    help = (
        "Give the values of settings releases ask the school for (they go to the "
        "project's env file, 0600). NAME asks for the value without echoing it "
        "(for secrets); --list shows every setting and whether it is set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("assignments", nargs="*", help="NAME=VALUE, or NAME")
        parser.add_argument("--list", action="store_true", help="list the settings")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"] or not options["assignments"]:
            self._list()
            return
        values: dict[str, str] = {}
        for item in options["assignments"]:
            name, equals, value = item.partition("=")
            values[name.strip()] = value if equals else getpass.getpass(f"{name}: ")
        try:
            names = actions.provide_settings(values, actor=Actor.command())
        except ActionRefused as e:
            raise CommandError(f"Nothing was changed: {e}") from None
        self.stdout.write(self.style.SUCCESS(f"Set {', '.join(names)}."))

    def _list(self) -> None:
        overview = presenting.settings_overview()
        if overview.problem:
            raise CommandError(overview.problem)
        if not overview.states:
            self.stdout.write("No release asks for settings.")
        for state in overview.states:
            setting = state.setting
            if state.missing:
                status = "MISSING (an update needing it waits)"
            elif setting.secret:
                status = "set (secret)" if state.is_set else "not set"
            else:
                status = f"= {state.shown!r}" + ("" if state.is_set else " (default)")
            self.stdout.write(f"{setting.name} {status}  {setting.description}")
        self.stdout.write(f"Kept in {overview.env_file}")
