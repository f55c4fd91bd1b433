"""Verified, restorable backups of the CLMS database."""

from django.apps import AppConfig


class BackupsConfig(AppConfig):
    """Backups app: registers its progress kind (its beat entry: ``clms_updates.periodic``)."""

    name = "backups"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clms_updates import progress
        from clms_updates.permissions import is_school_viewer

        progress.register_kind("backup", "backups.Backup", can_view=is_school_viewer)
