"""Start-up hooks that apps register, run once when a Celery worker is ready.

The update pipeline uses this to resume or roll back runs a killed worker left
in a non-terminal step; expiring overrides are checked here too. Apps register
in their ``AppConfig.ready()`` so that the project package never imports them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

_worker_start_hooks: list[Callable[[], None]] = []


def on_worker_start(hook: Callable[[], None]) -> Callable[[], None]:
    """Register ``hook`` to run when a worker starts; usable as a decorator."""
    if hook not in _worker_start_hooks:
        _worker_start_hooks.append(hook)
    return hook


def worker_started() -> None:
    """Run every registered hook; one failing hook does not stop the others."""
    for hook in list(_worker_start_hooks):
        try:
            hook()
        except Exception:
            logger.exception("Worker start-up hook %s failed", hook.__qualname__)
