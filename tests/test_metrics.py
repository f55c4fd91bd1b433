"""``GET /metrics``: only for the scraper, and the figures are the rows' own."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backups.tests.factories import make_backup
from updates.models import AgentState, UpdateRun
from updates.tests.factories import make_release, make_run

pytestmark = pytest.mark.django_db


def scrape(client: Client, **headers: str) -> dict[str, list]:  # type: ignore[type-arg]
    answer = client.get("/metrics", **headers)
    assert answer.status_code == 200, answer.content
    families = text_string_to_metric_families(answer.content.decode())
    return {family.name: family.samples for family in families}


def value(samples: list, **labels: str) -> float:  # type: ignore[type-arg]
    for sample in samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"no sample with {labels} in {samples}")


def test_metrics_are_refused_outside_the_allowed_networks_without_the_token(
    client, settings
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    settings.METRICS_TOKEN = "scraper-token-0123456789"
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    assert b"METRICS_TOKEN" in wrong.content
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scraper-token-0123456789")
    assert right.status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def arrange_a_school():  # type: ignore[no-untyped-def]
    """Rows behind every school metric: offline, a critical release offered, a
    rolled-back run with step timings, a verified backup."""
    AgentState.objects.update_or_create(
        pk=1,
        defaults={
            "installed_version": "1.0.0",
            "offline": True,
            "last_good_check_at": timezone.now() - timedelta(hours=2),
        },
    )
    deadline = timezone.now() + timedelta(hours=5)
    release = make_release("1.1.0", critical=True, force_after=deadline)
    make_run(
        release,
        state=UpdateRun.State.ROLLED_BACK,
        steps=[
            {"name": "backup", "status": "done", "seconds": 12.5},
            {"name": "health", "status": "failed", "seconds": 61},
        ],
    )
    return make_backup(size=4096)


def test_the_school_figures_are_the_installations_state(client) -> None:
    verified = arrange_a_school()
    metrics = scrape(client)
    assert value(metrics["clms_installed_info"], version="1.0.0") == 1
    assert (
        value(
            metrics["clms_update_available"],
            version="1.1.0",
            critical="true",
            rolled_back="false",
        )
        == 1
    )
    left = value(metrics["clms_critical_deadline_seconds"])
    assert 5 * 3600 - 60 < left <= 5 * 3600
    assert value(metrics["clms_offline"]) == 1
    assert value(metrics["clms_blocked"]) == 0
    assert value(metrics["clms_update_runs"], kind="update", outcome="rolled_back") == 1
    histogram = metrics["clms_update_step_duration_seconds"]
    assert value(histogram, step="health", le="60.0") == 0
    assert value(histogram, step="health", le="120.0") == 1
    assert value(histogram, step="backup", le="15.0") == 1
    assert verified.verified_at is not None
    assert value(metrics["clms_backup_last_verified_timestamp_seconds"]) == (
        pytest.approx(verified.verified_at.timestamp())
    )
    assert value(metrics["clms_backup_last_verified_size_bytes"]) == 4096
