"""Optional error tracking (Sentry or a compatible server), off unless
``SENTRY_DSN`` is set, and never sending a secret.

Two layers of scrubbing run on every event before it leaves: any field whose
name says it is secret (password, token, API key, private key, DSN …) is
replaced, and so is any text containing the value of a secret setting (the
school's vendor key, ``SECRET_KEY``, the metrics token …), wherever it appears:
a message, a local variable, a request header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FILTERED = "[Filtered]"
SECRET_NAME = re.compile(
    r"password|passwd|secret|token|api_?key|private|dsn|credential|cookie|"
    r"authorization|(^|_)key$",
    re.IGNORECASE,
)
# Shorter values are not worth matching (and would match ordinary words).
MIN_SECRET_LENGTH = 8


def secret_values(config: Mapping[str, Any]) -> set[str]:
    """The values of the settings whose names say they are secret."""
    return {
        value
        for name, value in config.items()
        if name.isupper()
        and SECRET_NAME.search(name)
        and isinstance(value, str)
        and len(value) >= MIN_SECRET_LENGTH
    }


def scrub(value: Any, secrets: set[str]) -> Any:
    """``value`` with every secret field and every secret value replaced."""
    if isinstance(value, dict):
        return {
            key: FILTERED
            if isinstance(key, str) and SECRET_NAME.search(key)
            else scrub(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(item, secrets) for item in value)
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
    return value


def init(
    dsn: str, *, config: Mapping[str, Any], environment: str, release: str
) -> None:
    """Start sending errors (Django requests, Celery tasks, logged errors) to ``dsn``."""
    import sentry_sdk

    secrets = secret_values(config) | {dsn}

    def before_send(event: Any, hint: Any) -> Any:
        return scrub(event, secrets)

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        send_default_pii=False,
        traces_sample_rate=0.0,
        before_send=before_send,
    )
