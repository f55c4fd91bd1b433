"""The school agent: checks, trust, scheduling, the update pipeline, enforcement."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class UpdatesConfig(AppConfig):
    """School agent app."""

    name = "updates"
    verbose_name = "School updates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backups.operations import register_clms_version_provider
        from clms_updates import lifecycle, progress
        from clms_updates.permissions import is_school_viewer
        from updates.pipeline.recovery import on_worker_start

        progress.register_kind(
            "update_run", "updates.UpdateRun", can_view=is_school_viewer
        )
        post_migrate.connect(_install_periodic_check, sender=self)
        # Runs a killed worker left behind are resumed or rolled back.
        lifecycle.on_worker_start(on_worker_start)
        # Manual backups record the installed CLMS version; backups never
        # imports updates, so the agent tells it.
        register_clms_version_provider(_installed_version)


def _installed_version() -> str:
    from updates.models import AgentState

    return AgentState.load().installed_version


def _install_periodic_check(**kwargs: Any) -> None:
    """Create or adjust the beat entry of the periodic check after every migrate."""
    from updates.scheduling import install_periodic_check

    install_periodic_check(using=kwargs.get("using", "default"))
