"""The agent's own product: published, indexed, served and analysed apart from CLMS.

A release of CLMS Updates (``VENDOR_AGENT_PRODUCT``) has its own versions,
its own signed index (``?product=clms-updates``), its own rollout figures and
its own rows in the fleet analytics; nothing of it reaches CLMS's index, and
nothing of CLMS's reaches the agent's.
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from clms_updates.manifest import parse_index, parse_manifest
from vendor_server.models import Release, School, UpdateReport
from vendor_server.publishing import PublishError
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release, make_school

pytestmark = [pytest.mark.django_db, pytest.mark.services]

BASE = "/vendor/api/v1/"
AGENT = "clms-updates"


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def index_of(client: APIClient, product: str = "") -> list[str]:
    answer = client.get(BASE + "index" + (f"?product={product}" if product else ""))
    assert answer.status_code == 200, answer.content
    index = parse_index(answer.json()["index"].encode())
    assert index.product == (product or "clms")
    return [entry.version for entry in index.releases]


def report(client: APIClient, version: str, outcome: str, product: str = "") -> None:
    answer = client.post(
        BASE + "reports",
        {
            "run_id": 1,
            "from_version": "1.0.0",
            "to_version": version,
            "outcome": outcome,
            "product": product,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content


def test_each_product_has_its_own_versions_and_its_own_index(offline) -> None:
    make_release("1.1.0", FAKE_IMAGE)
    agent = make_release("1.1.0", FAKE_IMAGE, product=AGENT)  # the same number
    make_release("1.3.1", FAKE_IMAGE, product=AGENT)
    _, key = make_school()
    client = client_for(key)

    assert index_of(client) == ["1.1.0"]
    assert sorted(index_of(client, AGENT)) == ["1.1.0", "1.3.1"]
    manifest = client.get(BASE + f"releases/1.1.0/manifest?product={AGENT}").json()
    assert parse_manifest(manifest["manifest"].encode()).product == AGENT
    assert manifest["manifest"].encode() == agent.manifest_bytes
    clms = client.get(BASE + "releases/1.1.0/manifest").json()
    assert parse_manifest(clms["manifest"].encode()).product == "clms"
    # An agent version CLMS never had is not a CLMS release.
    assert client.get(BASE + "releases/1.3.1/manifest").status_code == 404


def test_an_unknown_product_is_a_clear_404(offline) -> None:
    _, key = make_school()
    answer = client_for(key).get(BASE + "index?product=other")
    assert answer.status_code == 404
    assert answer.json()["code"] == "product_not_found"
    assert "clms-updates" in answer.json()["detail"]
    bad = client_for(key).post(
        BASE + "reports",
        {
            "run_id": 1,
            "from_version": "1",
            "to_version": "2",
            "outcome": "failed",
            "product": "other",
        },
        format="json",
    )
    assert bad.status_code == 400
    assert "no product 'other'" in bad.json()["product"][0]
    assert not UpdateReport.objects.exists()


def test_a_version_is_never_reused_within_a_product(offline) -> None:
    make_release("1.3.1", FAKE_IMAGE, product=AGENT)
    with pytest.raises(PublishError, match="already published"):
        make_release("1.3.1", FAKE_IMAGE, product=AGENT)
    assert Release.objects.of(AGENT).count() == 1


def test_a_product_this_vendor_does_not_publish_is_refused(offline) -> None:
    with pytest.raises(PublishError, match="not one this vendor publishes"):
        make_release("1.0.0", FAKE_IMAGE, product="someone-else")
    assert not Release.objects.exists()


def test_agent_reports_set_the_agent_version_and_count_for_the_agent_release(
    offline, vendor_staff
) -> None:
    clms = make_release("1.1.0", FAKE_IMAGE)
    agent = make_release("1.1.0", FAKE_IMAGE, product=AGENT)
    school, key = make_school()
    client = client_for(key)

    report(client, "1.1.0", "succeeded", AGENT)
    report(client, "1.1.0", "rolled_back")

    school = School.objects.get(pk=school.pk)
    assert school.agent_version == "1.1.0"
    assert school.current_version != "1.1.0"  # CLMS's rolled back
    assert UpdateReport.objects.get(product=AGENT).release == agent
    assert UpdateReport.objects.get(product="clms").release == clms

    staff = Client()
    staff.force_login(vendor_staff)
    page = staff.get("/vendor/analytics/")
    assert page.status_code == 200
    agent_rates = page.context["agent_rates"]
    assert [(r.version, r.succeeded, r.rolled_back) for r in agent_rates] == [
        ("1.1.0", 1, 0)
    ]
    assert [(r.version, r.succeeded, r.rolled_back) for r in page.context["rates"]] == [
        ("1.1.0", 0, 1)
    ]
    assert ("1.1.0", 1) in page.context["agent_per_version"]
    assert "Outcomes per agent release" in page.content.decode()
