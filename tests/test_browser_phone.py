"""Every school page on a 390 px phone screen, with rows in every table.

A page passes only if nothing is off the screen: not the page scrolling
sideways, and not a column or button inside a table that scrolls by itself.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backups.tests.factories import make_backup
from clms_updates import audit
from clms_updates.actions import Actor
from clms_updates.models import NotificationDelivery, NotificationTarget
from tests.browser_support import (  # noqa: F401 - fixtures used by name
    assert_fits_the_screen,
    browser_fixture,
    expect,
    open_page,
    serve_fixture,
    shots_fixture,
)
from updates.models import OfflineBundle, UpdateRun
from updates.tests.factories import make_run
from updates.tests.states import critical_run_before_its_deadline

pytestmark = [
    pytest.mark.browser,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
]

PAGES = [
    ("/updates/", "Updates"),
    ("/updates/history/", "History"),
    ("/updates/audit/", "Audit log"),
    ("/updates/notifications/", "Notifications"),
    ("/updates/enforcement/", "Critical deadline"),
    ("/updates/offline/", "Offline"),
    ("/updates/rollback/", "Roll back"),
    ("/backups/", "Backups"),
]


def _a_busy_school() -> UpdateRun:
    """Long names, long reasons, every table with rows."""
    critical_run_before_its_deadline()
    for n in range(3):
        make_backup(
            reason="before the update to CLMS 1.0.3 (run 12, requested by school-admin)",
            clms_version="1.0.2",
            size=123_456_789 * (n + 1),
            file_name=f"clms-20261201-2200{n}-before-update-1.0.3.clmsbackup",
        )
    actor = Actor.system("schedule")
    for n in range(4):
        audit.record(
            "updates.critical.scheduled",
            actor=actor,
            target=f"run {n}",
            release="1.0.3",
            deadline=timezone.now().isoformat(),
            scheduled_for=(timezone.now() + timedelta(hours=n)).isoformat(),
            outside_window=True,
        )
    target = NotificationTarget.objects.create(
        name="IT team on ntfy, the long name of the group",
        url="ntfys://user:a-long-secret-password@ntfy.example.org/clms-updates-alerts",
        events=["run_failed", "release_available", "deadline_warning"],
    )
    NotificationDelivery.objects.create(
        target=target,
        event="run_failed",
        key="run 12",
        subject="CLMS update to 1.0.3 failed (nothing was changed)",
        body="…",
        attempts=2,
        last_error="Failed to send ntfy notification: Connection refused on 443",
    )
    OfflineBundle.objects.create(
        file_name="clms-update-1.0.3-with-a-long-file-name-from-the-vendor.zip",
        sha256="ab" * 32,
        size=987_654_321,
        version="1.0.3",
        state=OfflineBundle.State.VERIFIED,
    )
    return make_run(
        to_version="1.0.1",
        from_version="1.0.0",
        state=UpdateRun.State.ROLLED_BACK,
        error_code="health_check_failed",
        error_message="CLMS 1.0.1 did not answer /health within 60 s (HTTP 502)",
        started_at=timezone.now() - timedelta(days=1),
        finished_at=timezone.now() - timedelta(days=1) + timedelta(minutes=2),
    )


@pytest.mark.parametrize("who", ["school_admin", "school_viewer"])
def test_every_page_fits_a_phone_screen(
    who: str, request, browser, serve, shots
) -> None:
    user = request.getfixturevalue(who)
    failed_run = _a_busy_school()
    server = serve()
    page = open_page(browser, server, user, width=390)
    pages = [*PAGES, (f"/updates/runs/{failed_run.pk}/", "Run")]
    for path, name in pages:
        response = page.goto(server.url + path)
        assert response is not None and response.status < 500, path
        if response.status in (403, 404):
            continue  # a viewer on an admin's page: refused, and that page fits too
        expect(page.locator("main")).to_be_visible()
        assert_fits_the_screen(page, f"{name} ({path}) as {who}")
        shots(page, f"phone-{who}-{name.lower().replace(' ', '-')}")
    page.context.close()
