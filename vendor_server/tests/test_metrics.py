"""The vendor's figures on ``GET /metrics``."""

from __future__ import annotations

import pytest

from tests.test_metrics import scrape, value
from vendor_server import actions
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release, make_school

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_the_vendor_figures_count_schools_and_failed_installs(client, offline) -> None:
    make_release("1.1.0", FAKE_IMAGE)
    first, _ = make_school()
    second, _ = make_school(channel="beta")
    for n, (school, outcome) in enumerate(((first, "succeeded"), (second, "failed"))):
        actions.record_report(
            school.id,
            {
                "run_id": n,
                "from_version": "1.0.0",
                "to_version": "1.1.0",
                "outcome": outcome,
                "duration_seconds": 5,
                "error_code": "",
                "log_excerpt": "",
            },
        )
    metrics = scrape(client)
    assert value(metrics["clms_vendor_schools"], version="1.1.0", channel="stable") == 1
    reports = metrics["clms_vendor_release_reports"]
    assert value(reports, version="1.1.0", result="reported") == 2
    assert value(reports, version="1.1.0", result="failed") == 1
    assert (
        value(metrics["clms_vendor_release_state"], version="1.1.0", state="live") == 1
    )


def test_the_dashboards_and_alerts_name_only_metrics_that_are_served(
    client, offline
) -> None:
    """docs/monitoring: every ``clms_…`` name in the Grafana dashboards and the
    alert rules is one a scrape of both roles returns (rows of every kind made)."""
    import json
    import re
    from pathlib import Path

    import yaml

    from tests.test_metrics import arrange_a_school

    arrange_a_school()
    make_release("1.1.0", FAKE_IMAGE)
    make_school()
    served = {sample.name for samples in scrape(client).values() for sample in samples}
    folder = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    expressions = [
        target["expr"]
        for name in ("grafana-school.json", "grafana-vendor.json")
        for panel in json.loads((folder / name).read_text())["panels"]
        for target in panel["targets"]
    ] + [
        rule["expr"]
        for group in yaml.safe_load((folder / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    named = {name for expr in expressions for name in re.findall(r"clms_\w+", expr)}
    assert len(named) > 10
    assert not named - served, f"not served: {sorted(named - served)}"
