"""What a log line is about: the run, release, step or school being handled.

The pipeline and the vendor API set these while they work (``bind``); a filter
puts them on every record logged meanwhile, in this thread or task, so the JSON
logs (``LOG_FORMAT=json``) carry ``run_id``, ``release``, ``step`` and
``school`` without each call passing them. The plain format shows them too,
as ``[run_id=12 step=migrate]`` after the level.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

FIELDS = ("run_id", "release", "step", "school")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "clms_log_context", default=None
)


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged inside the block (nested blocks add)."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {sorted(unknown)}")
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def set_field(name: str, value: Any) -> None:
    """Change one field of the current block (the pipeline moving to its next step)."""
    current = _context.get()
    if current is not None and name in FIELDS:
        current[name] = value


class ContextFilter(logging.Filter):
    """Puts the bound fields on each record (``record.context`` for the plain format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get() or {}
        for name in FIELDS:
            setattr(record, name, bound.get(name))
        record.context = (
            " [" + " ".join(f"{k}={v}" for k, v in bound.items() if v is not None) + "]"
            if any(v is not None for v in bound.values())
            else ""
        )
        return True


class RequestContextMiddleware:
    """Each request logs with its own context (the vendor API adds the school)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        with bind():
            return self.get_response(request)
