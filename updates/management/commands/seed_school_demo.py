"""``manage.py seed_school_demo``: the school agent's demo data (idempotent)."""

from __future__ import annotations

from datetime import time
from typing import Any

from django.core.management.base import BaseCommand

from updates.models import MaintenanceWindow


class Command(BaseCommand):
    help = "Add the default maintenance window (Mon-Fri 22:00-05:00) if none exists."

    def handle(self, *args: Any, **options: Any) -> None:
        if MaintenanceWindow.objects.exists():
            self.stdout.write(
                "Maintenance windows already configured; left as they are."
            )
            return
        MaintenanceWindow.objects.create(
            weekdays=[0, 1, 2, 3, 4], start=time(22, 0), end=time(5, 0), enabled=True
        )
        self.stdout.write(
            "Added the maintenance window Mon-Fri 22:00-05:00 (school time)."
        )
