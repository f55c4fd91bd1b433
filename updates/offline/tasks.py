"""The beat task of the offline folder (thin: one logic call)."""

from __future__ import annotations

from celery import shared_task

from updates.offline import scan_offline_folder


@shared_task(name="updates.offline_scan", ignore_result=True)
def offline_scan() -> list[str]:
    """Beat: look for new bundles in the offline folder; returns their states."""
    return [f"{b.file_name}: {b.state}" for b in scan_offline_folder()]
