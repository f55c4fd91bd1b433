"""The project package as an app: accounts, groups, the audit log, health, demo."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    """Shared pieces both roles need: groups, audit log, health, periodic jobs."""

    name = "clms_updates"
    label = "core"
    verbose_name = "CLMS Updates core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clms_updates import guessing  # noqa: F401 (audits lock-outs)

        post_migrate.connect(_install_periodic_tasks, sender=self)


def _install_periodic_tasks(**kwargs: Any) -> None:
    """After every migrate: the beat entries follow ``clms_updates.periodic``."""
    from clms_updates.periodic import install_periodic_tasks

    install_periodic_tasks(using=kwargs.get("using", "default"))
