"""Input out of bounds gets a 400 that names it, never a 500: both roles' APIs.

Whole numbers past the database's 64 bits, JSON nested absurdly deep, text
with a lone surrogate, and (signed, so only the vendor could send it) an
index sequence past 64 bits.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from vendor_server import indexing
from vendor_server.models import UpdateReport
from vendor_server.tests.factories import make_school

pytestmark = pytest.mark.django_db


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BODIES = {
    "integer-past-64-bits": json.dumps({"run_id": 2**64, "to_version": "1.1.0"}),
    "nested-100000-deep": _deep(100_000),
    "nested-40-deep": json.dumps({"values": json.loads(_deep(40))}),
    "lone-surrogate": '{"values": {"SEARCH_API_KEY": "\\ud800"}}',
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("post", "/api/updates/schedule"),
        ("put", "/api/updates/settings"),
        ("put", "/api/updates/windows"),
        ("post", "/api/updates/agent/update"),
    ],
)
def test_the_agent_api_refuses_out_of_bounds_json_with_a_400(
    admin_api, method: str, route: str, body: str
) -> None:
    answer = getattr(admin_api, method)(
        route, data=body, content_type="application/json"
    )
    assert answer.status_code == 400, answer.content[:300]
    assert answer.json()  # JSON that says what, not a traceback


@pytest.mark.services
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_vendor_refuses_out_of_bounds_reports_with_a_400(
    settings, signing_key, body: str
) -> None:
    settings.VENDOR_GNUPG_HOME, settings.VENDOR_SIGNING_KEY = signing_key
    _, key = make_school()
    school = APIClient()
    school.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    answer = school.post(
        "/vendor/api/v1/reports", data=body, content_type="application/json"
    )
    assert answer.status_code == 400, answer.content[:300]
    assert not UpdateReport.objects.exists()


@pytest.mark.services
def test_the_largest_numbers_the_database_holds_are_still_accepted(
    settings, signing_key
) -> None:
    settings.VENDOR_GNUPG_HOME, settings.VENDOR_SIGNING_KEY = signing_key
    indexing.forget_local_caches()
    _, key = make_school()
    school = APIClient()
    school.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    answer = school.post(
        "/vendor/api/v1/reports",
        {
            "run_id": 2**63 - 1,
            "from_version": "1.0.0",
            "to_version": "1.1.0",
            "outcome": "failed",
            "duration_seconds": 2**31 - 1,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    too_long = school.post(
        "/vendor/api/v1/reports",
        {
            "run_id": 1,
            "from_version": "1",
            "to_version": "2",
            "outcome": "failed",
            "duration_seconds": 2**31,
        },
        format="json",
    )
    assert too_long.status_code == 400
    assert "duration_seconds" in too_long.json()
