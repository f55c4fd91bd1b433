"""``manage.py check_updates``: check now, print what was found or why it was refused."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from clms_updates.actions import Actor
from updates import actions
from updates.models import UpdateCheck

# Exit codes: 0 ok, 1 refused, 2 offline, 3 error (e.g. nothing configured).
EXIT_CODES: dict[str, int] = {
    UpdateCheck.Outcome.REFUSED: 1,
    UpdateCheck.Outcome.OFFLINE: 2,
    UpdateCheck.Outcome.ERROR: 3,
}


class Command(BaseCommand):
    help = (
        "Check the configured sources for a verified update. Exits 0 when the check "
        "succeeded, 1 when something was refused, 2 when offline, 3 on a setup error."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        check = actions.check_for_updates(actor=Actor.command())
        if check.outcome == UpdateCheck.Outcome.OK:
            where = f" from {check.source}" if check.source else ""
            self.stdout.write(
                f"Checked{where} (index sequence {check.index_sequence})."
            )
            if check.found_version:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Verified release available: CLMS {check.found_version}. "
                        f"{check.reason}"
                    )
                )
            else:
                self.stdout.write(self.style.SUCCESS(check.reason))
            return
        raise CommandError(
            f"Check {check.outcome}: {check.reason}",
            returncode=EXIT_CODES.get(str(check.outcome), 1),
        )
