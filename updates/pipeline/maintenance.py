"""The maintenance flag the CLMS stack honours while it is being changed.

The agent writes ``maintenance.json`` into ``CLMS_STATE_DIR`` (the folder the
CLMS containers mount as their state directory); while it exists CLMS answers
its operations with a maintenance message (health keeps answering). The flag
names the run that set it, so the watchdog can lift a flag left by a run that
is over, whatever happened to the worker that set it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

FLAG_NAME = "maintenance.json"


def flag_path() -> Path:
    return Path(settings.CLMS_STATE_DIR) / FLAG_NAME


def enter(run_id: int, message: str) -> Path:
    """Write the flag atomically (a reader sees the whole file or none)."""
    path = flag_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps(
        {"message": message, "run_id": run_id, "since": timezone.now().isoformat()}
    )
    handle, temporary = tempfile.mkstemp(prefix=".maintenance.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def current() -> dict[str, Any] | None:
    """The flag's content, or ``None`` when CLMS is not in maintenance."""
    try:
        data = json.loads(flag_path().read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"message": "", "run_id": None}
    return data if isinstance(data, dict) else {"message": "", "run_id": None}


def lift() -> bool:
    """Remove the flag; True if there was one. Never raises (logged instead)."""
    try:
        flag_path().unlink()
    except FileNotFoundError:
        return False
    except OSError:
        logger.exception("Could not lift the maintenance flag %s", flag_path())
        return False
    return True
