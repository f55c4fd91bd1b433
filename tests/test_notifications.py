"""Notifications through Apprise, to a real JSON webhook served by this test.

Real Apprise posts to a real HTTP server on the loopback (the JSON webhook
channel, ``json://``): targets are added on the page, a test is sent from it,
each occurrence of an event is delivered once, a target that does not
answer is retried and finally marked failed (audited), and raising an event
never waits for a target.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.utils import timezone

from clms_updates import notifications
from clms_updates.actions import Actor
from clms_updates.models import AuditEntry, NotificationDelivery, NotificationTarget
from clms_updates.notify import notify
from updates import checking
from updates.models import AgentState
from updates.sources import Source, SourceUnavailable

pytestmark = pytest.mark.django_db

PAGE = "/updates/notifications/"


class Webhook:
    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                webhook.received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"json://127.0.0.1:{port}/hook"


def _target(url: str, events: list[str]) -> NotificationTarget:
    return notifications.add_target("IT team", url, events, actor=Actor.system())


def test_an_admin_adds_a_target_on_the_page_and_sends_a_test(
    client: Client, school_admin, webhook: Webhook
) -> None:
    client.force_login(school_admin)
    answer = client.post(
        PAGE,
        {
            "name": "IT team",
            "url": webhook.url + "?token=s3cret-token",
            "events": ["run_failed"],
        },
        follow=True,
    )
    page = answer.content.decode()
    assert "Added IT team" in page
    assert "s3cret-token" not in page  # the URL's secret is never shown
    target = NotificationTarget.objects.get()
    assert target.events == ["run_failed"]
    added = AuditEntry.objects.get(action="notification.target_added")
    assert "s3cret-token" not in json.dumps(added.detail)

    tested = client.post(f"{PAGE}{target.pk}/test/", follow=True).content.decode()
    assert "The test message was delivered." in tested
    assert webhook.received[0]["title"] == "CLMS Updates: test notification"


def test_a_bad_url_or_no_event_is_refused_with_the_reason(client, school_admin) -> None:
    client.force_login(school_admin)
    bad = client.post(PAGE, {"name": "X", "url": "nope://x", "events": ["run_failed"]})
    assert "Apprise cannot send to this URL" in bad.content.decode()
    none = client.post(PAGE, {"name": "X", "url": "json://127.0.0.1/x"})
    assert bad.status_code == none.status_code == 200
    assert "This field is required" in none.content.decode()
    assert not NotificationTarget.objects.exists()


def test_a_test_to_a_target_that_does_not_answer_says_so(
    client, school_admin, dead_url
) -> None:
    client.force_login(school_admin)
    target = _target(dead_url, ["run_failed"])
    page = client.post(f"{PAGE}{target.pk}/test/", follow=True).content.decode()
    assert "The test message was not delivered" in page


def test_viewers_cannot_see_or_change_targets(client, school_viewer, webhook) -> None:
    target = _target(webhook.url, ["run_failed"])
    client.force_login(school_viewer)
    assert client.get(PAGE).status_code == 403
    assert client.post(f"{PAGE}{target.pk}/remove/").status_code == 403
    assert NotificationTarget.objects.exists()


def test_each_occurrence_is_delivered_once_and_only_to_subscribers(webhook) -> None:
    _target(webhook.url, ["run_failed"])
    other = notifications.add_target(
        "Other", webhook.url + "/other", ["release_available"], actor=Actor.system()
    )
    context = {"run": _FakeRun(), "rolled": False, "log_tail": "boom"}
    for _ in range(3):  # the same failure raised again by each check cycle
        notify("run_failed", context, key="run 7")
    assert not webhook.received  # raising never waits for a target
    assert notifications.deliver_due() == 1
    assert len(webhook.received) == 1
    assert "CLMS update to 1.0.1 failed" in webhook.received[0]["title"]
    assert not other.deliveries.exists()
    notify("run_failed", context, key="run 8")  # another occurrence
    notifications.deliver_due()
    assert len(webhook.received) == 2


def test_a_failed_delivery_is_retried_then_given_up_and_audited(dead_url) -> None:
    _target(dead_url, ["run_failed"])
    notify(
        "run_failed",
        {"run": _FakeRun(), "rolled": False, "log_tail": ""},
        key="run 9",
    )
    now = timezone.now()
    assert notifications.deliver_due(now=now) == 0
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == NotificationDelivery.Status.PENDING
    assert delivery.attempts == 1 and delivery.next_attempt_at > now
    assert notifications.deliver_due(now=now) == 0  # not due yet: no second try
    assert NotificationDelivery.objects.get().attempts == 1
    for _ in notifications.RETRY_MINUTES:
        now += timedelta(hours=3)
        notifications.deliver_due(now=now)
    delivery.refresh_from_db()
    assert delivery.status == NotificationDelivery.Status.FAILED
    assert delivery.attempts == len(notifications.RETRY_MINUTES) + 1
    assert delivery.last_error
    assert AuditEntry.objects.filter(action="notification.failed").count() == 1


class _Offline(Source):
    name = "vendor"

    def fetch_index(self):  # type: ignore[no-untyped-def]
        raise SourceUnavailable("no route to host")

    def fetch_manifest(self, version):  # type: ignore[no-untyped-def]
        raise SourceUnavailable("no route to host")

    def fetch_keys(self) -> str:
        raise SourceUnavailable("no route to host")


@pytest.mark.django_db(transaction=True)
def test_going_offline_is_told_once_not_every_check(webhook, settings) -> None:
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = ["A" * 40]
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.0.0"})
    _target(webhook.url, ["agent_offline"])
    for _ in range(3):
        checking.run_check(sources=[_Offline()])
    assert NotificationDelivery.objects.filter(event="agent_offline").count() == 1
    notifications.deliver_due()
    assert webhook.received[0]["title"] == "CLMS Updates cannot reach any update source"


class _FakeRun:
    """What the run_failed templates read."""

    pk = 7
    kind = "update"
    from_version = "1.0.0"
    to_version = "1.0.1"
    state = "failed"
    error_code = "health_failed"
    error_message = "the app never became healthy"
    backup_id = 3


def test_vendor_staff_hear_of_silent_schools_once_per_set(webhook) -> None:
    from vendor_server import actions as vendor
    from vendor_server.schools import create_school

    _target(webhook.url, ["schools_silent"])
    now = timezone.now()
    for name, days in (("North", 10), ("South", 30), ("East", 1)):
        school, _ = create_school(name)
        school.last_seen = now - timedelta(days=days)
        school.save(update_fields=["last_seen"])
    assert vendor.tell_silent_schools(now=now) == 2
    assert vendor.tell_silent_schools(now=now) == 2  # the same two: not told again
    later = now + timedelta(days=7)  # East is silent too now
    assert vendor.tell_silent_schools(now=later) == 3
    notifications.deliver_due()
    assert [m["title"] for m in webhook.received] == [
        "2 schools not seen for 7 days",
        "3 schools not seen for 7 days",
    ]
    assert "South: last seen" in webhook.received[0]["message"]
