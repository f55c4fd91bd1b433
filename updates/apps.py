"""The school agent: checks, trust, scheduling, the update pipeline, enforcement."""

from django.apps import AppConfig


class UpdatesConfig(AppConfig):
    """School agent app."""

    name = "updates"
    verbose_name = "School updates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backups.operations import register_clms_version_provider
        from clms_updates import lifecycle, progress
        from clms_updates.permissions import is_school_viewer
        from updates import offline
        from updates.pipeline.recovery import on_worker_start

        progress.register_kind(
            "update_run", "updates.UpdateRun", can_view=is_school_viewer
        )
        # Runs a killed worker left behind are resumed or rolled back.
        lifecycle.on_worker_start(on_worker_start)
        # Manual backups record the installed CLMS version; backups never
        # imports updates, so the agent tells it.
        register_clms_version_provider(_installed_version)
        # The offline folder is one of the update sources.
        offline.register_offline_source()


def _installed_version() -> str:
    from updates.models import AgentState

    return AgentState.load().installed_version
