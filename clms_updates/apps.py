"""The project package as an app: accounts, groups, the audit log, health, demo."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared pieces both roles need: groups, audit log, health, demo commands."""

    name = "clms_updates"
    label = "core"
    verbose_name = "CLMS Updates core"
    default_auto_field = "django.db.models.BigAutoField"
