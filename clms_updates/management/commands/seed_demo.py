"""Seed the embedded demo: users ``admin`` and ``viewer``, then each app's demo data."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from clms_updates.constants import SCHOOL_ADMIN_GROUP, SCHOOL_VIEWER_GROUP

# Apps add their demo data through commands of these names, run when present.
APP_SEED_COMMANDS = ("seed_vendor_demo", "seed_backups_demo", "seed_school_demo")


class Command(BaseCommand):
    help = "Create the demo users (passwords printed) and each app's demo data. Safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = self._credentials_file()
        passwords = self._load_passwords(credentials)
        admins, viewers = (
            Group.objects.get(name=n) for n in (SCHOOL_ADMIN_GROUP, SCHOOL_VIEWER_GROUP)
        )

        for username, group, staff in (
            ("admin", admins, True),
            ("viewer", viewers, False),
        ):
            password = passwords.setdefault(username, secrets.token_urlsafe(12))
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = staff
            user.is_superuser = staff
            # A new hash (same password, new salt) would end every open session:
            # a restarted `make run` must leave the browser logged in.
            if not user.check_password(password):
                user.set_password(password)
            user.save()
            user.groups.add(group)
        credentials.write_text("".join(f"{u}:{p}\n" for u, p in passwords.items()))
        credentials.chmod(0o600)

        available = get_commands()
        for name in APP_SEED_COMMANDS:
            if name in available:
                call_command(name, stdout=self.stdout, stderr=self.stderr)

        self.stdout.write("Demo users (also in var/demo-credentials.txt):")
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<7} password: {password}")

    @staticmethod
    def _credentials_file() -> Path:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        return Path(settings.VAR_DIR) / "demo-credentials.txt"

    @staticmethod
    def _load_passwords(path: Path) -> dict[str, str]:
        # The same passwords on every run, so a second `make run` changes nothing.
        if not path.exists():
            return {}
        pairs = (
            line.split(":", 1) for line in path.read_text().splitlines() if ":" in line
        )
        return {user: password for user, password in pairs}
