"""Verified, restorable backups of the CLMS database."""

from django.apps import AppConfig


class BackupsConfig(AppConfig):
    """Backups app."""

    name = "backups"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"
