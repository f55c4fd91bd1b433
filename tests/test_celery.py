"""A task makes a round trip through a real Redis broker and a real worker process."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.services]


def test_a_task_round_trips_through_redis_and_a_worker(celery_worker_process) -> None:
    from clms_updates.tasks import ping

    result = ping.delay("hello-42").get(timeout=30)
    assert result["nonce"] == "hello-42"
    assert result["worker"]


def test_deep_healthz_sends_a_real_task(
    client, settings, celery_worker_process
) -> None:
    settings.HEALTHZ_REQUIRED = ["database", "redis", "celery"]
    body = client.get("/healthz?deep=1").json()
    assert body["components"]["celery"]["up"] is True, body
    assert "round trip" in body["components"]["celery"]["detail"]
