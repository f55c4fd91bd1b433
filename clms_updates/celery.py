"""The Celery application: Redis broker, JSON only, tasks autodiscovered per app."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clms_updates.settings")

app = Celery("clms_updates")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _announce_worker_ready(sender: object = None, **kwargs: object) -> None:
    """Let each app recover work a killed worker left behind (see ``on_worker_ready``)."""
    from clms_updates import lifecycle

    lifecycle.worker_started()
