"""``manage.py create_api_token USER``: print (or renew) a user's API token."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Print the API token of USER, creating it if needed (--renew replaces it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--renew", action="store_true", help="revoke the old token, make a new one"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(
                f"No user {options['username']!r}; create it first (createsuperuser, "
                "or the admin site) and add it to school-admin or school-viewer."
            ) from None
        if options["renew"]:
            Token.objects.filter(user=user).delete()
        token, created = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
        if not created:
            self.stderr.write("(existing token; use --renew to replace it)")
