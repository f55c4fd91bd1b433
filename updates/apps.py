"""The school agent: checks, trust, scheduling, the update pipeline, enforcement."""

from django.apps import AppConfig


class UpdatesConfig(AppConfig):
    """School agent app."""

    name = "updates"
    verbose_name = "School updates"
    default_auto_field = "django.db.models.BigAutoField"
