"""The school pages in a real browser: headless Chromium against a live ASGI server.

Progress travels from this process through the real Redis channel layer to the
page, so each test controls exactly what the worker would publish. The full
flow with a real worker, vendor server and demo stack is in
``test_browser_e2e.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser_support import (  # noqa: F401 - fixtures used by name
    browser_fixture,
    every_day_window,
    expect,
    in_thread,
    open_page,
    publish,
    serve_fixture,
    shots_fixture,
)
from updates import scheduling
from updates.models import AgentState, UpdateRun
from updates.tests.conftest import (  # noqa: F401 - fixtures used by name
    agent_gnupg_home,
    vendor,
    vendor_key,
)
from updates.tests.factories import make_manifest, make_release, make_run
from updates.tests.states import blocked_after_a_rollback_below_it

pytestmark = [
    pytest.mark.browser,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
]


# ---------------------------------------------------------------------------


def test_an_admin_checks_schedules_and_cancels(
    browser,
    serve,
    school_admin,
    vendor,  # noqa: F811
    agent_gnupg_home,  # noqa: F811
    shots,
) -> None:
    every_day_window()
    vendor.publish([make_manifest("1.0.1", changelog="## 1.0.1\n- **Faster** loans")])
    server = serve(
        UPDATES_VENDOR_URL=vendor.url,
        UPDATES_VENDOR_API_KEY="school-key",
        UPDATES_VENDOR_KEY_FINGERPRINTS=vendor.fingerprint,
        UPDATES_VENDOR_PUBLIC_KEY_FILE="",
        UPDATES_GNUPG_HOME=str(agent_gnupg_home),
        UPDATES_SOURCES="vendor",
    )
    page = open_page(browser, server, school_admin)
    expect(page.get_by_test_id("installed-version")).to_have_text("CLMS 1.0.0")
    expect(page.locator("#release-title")).to_have_text("No update available")

    page.get_by_role("button", name="Check now").click()
    expect(page.locator(".msg-success")).to_contain_text(
        "Check finished: 1.0.1 is available"
    )
    expect(page.locator("#release-title")).to_have_text("CLMS 1.0.1 is available")
    expect(page.locator(".changelog strong")).to_have_text("Faster")
    # Health loads after the page; its first answer asks each component in
    # turn (a worker ping waits up to its timeout), so give it that long.
    expect(page.locator("#health")).to_contain_text("Database", timeout=20_000)
    shots(page, "01-manager-release-available")

    # A time in the past: a clear error, and the input is kept.
    page.locator("#schedule > summary").click()
    page.get_by_label("At a date and time I choose").check()
    yesterday = (
        timezone.now().astimezone(scheduling.school_zone()) - timedelta(days=1)
    ).date()
    page.get_by_label("Date", exact=True).fill(yesterday.isoformat())
    page.get_by_label("Time", exact=True).fill("22:00")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".field-error")).to_contain_text("is in the past")
    expect(page.get_by_label("Date", exact=True)).to_have_value(yesterday.isoformat())
    shots(page, "02-schedule-error-kept-input")

    tomorrow = yesterday + timedelta(days=2)
    page.get_by_label("Date", exact=True).fill(tomorrow.isoformat())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("confirm-when")).to_contain_text("22:00")
    shots(page, "03-schedule-confirmation")
    page.get_by_role("button", name="Confirm schedule").click()
    expect(page.locator(".msg-success")).to_contain_text("CLMS 1.0.1 is scheduled for")
    expect(page.get_by_test_id("scheduled-run")).to_have_count(1)
    shots(page, "04-manager-scheduled")
    run = UpdateRun.objects.get()
    assert run.state == UpdateRun.State.SCHEDULED

    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".msg-success")).to_contain_text(
        "is cancelled and will not run"
    )
    expect(page.get_by_test_id("scheduled-run")).to_have_count(0)
    run.refresh_from_db()
    assert run.state == UpdateRun.State.CANCELLED

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_test_id("audit")).to_contain_text("updates.cancel")
    expect(page.get_by_test_id("audit")).to_contain_text("updates.schedule")
    shots(page, "05-audit-log")
    page.context.close()


def test_the_progress_page_follows_a_run_live_through_reload_and_reconnect(
    browser, serve, school_admin, shots
) -> None:
    run = make_run(make_release("1.0.1"), scheduled_for=timezone.now())
    run = in_thread(UpdateRun.claim, run.pk)  # type: ignore[assignment]
    assert run is not None
    publish(run, "Preflight checks passed", step="preflight", percent=5)
    server = serve()
    page = open_page(browser, server, school_admin)
    page.goto(f"{server.url}/updates/runs/{run.pk}/")
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    expect(page.get_by_test_id("update-banner")).to_have_count(1)
    page.evaluate("window.__notReloaded = true")

    publish(run, "Pulling app image (12 MB)", step="fetch", percent=30, eta_seconds=45)
    expect(page.get_by_test_id("run-percent")).to_have_text("30%")
    expect(page.locator('[data-step="fetch"]')).to_have_attribute(
        "data-state", "running"
    )
    expect(page.locator('[data-step="preflight"]')).to_have_attribute(
        "data-state", "done"
    )
    expect(page.get_by_test_id("run-log")).to_contain_text("Pulling app image (12 MB)")
    expect(page.locator("#run-eta")).to_have_text("about 45 s left")
    assert page.evaluate("window.__notReloaded") is True
    shots(page, "06-progress-live")

    # Reload mid-run: the page shows the current state and keeps following.
    publish(run, "Backup verified", step="backup", percent=50)
    page.reload()
    expect(page.get_by_test_id("run-percent")).to_have_text("50%")
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    publish(run, "Recreating app container", step="apply", percent=70)
    expect(page.locator('[data-step="apply"]')).to_have_attribute(
        "data-state", "running"
    )

    # The socket drops (server restart); what happened meanwhile is caught up.
    server.stop()
    expect(page.get_by_test_id("connection")).to_contain_text("reconnecting")
    shots(page, "07-progress-reconnecting")
    publish(run, "Migrations applied", step="migrate", percent=85)
    server.start()
    expect(page.get_by_test_id("connection")).to_have_text("Live", timeout=30_000)
    expect(page.get_by_test_id("run-log")).to_contain_text("Migrations applied")
    expect(page.get_by_test_id("run-percent")).to_have_text("85%")

    publish(run, "Health check passed", step="health", percent=95)
    run.percent = 100
    in_thread(run.succeed)
    expect(page.get_by_test_id("run-state")).to_have_text("Succeeded")
    expect(page.get_by_test_id("connection")).to_contain_text("Finished")
    expect(page.locator("#run-done")).to_be_visible()
    # The banner offering 1.0.1 was true when the page loaded; not any more.
    expect(page.get_by_test_id("update-banner")).to_have_count(0)
    expect(page.locator('[data-step="commit"]')).to_have_attribute("data-state", "done")
    shots(page, "08-progress-succeeded")

    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_test_id("history")).to_contain_text(f"#{run.pk} update")
    expect(page.get_by_test_id("history")).to_contain_text("Succeeded")
    shots(page, "09-history")
    page.context.close()


def test_a_quiet_run_keeps_its_live_view_without_a_single_drop(
    browser, serve, school_admin
) -> None:
    """A long step (a health wait, a big pull) publishes nothing for a while:
    the socket must stay up all that time, not drop and reconnect."""
    run = make_run(make_release("1.0.1"), scheduled_for=timezone.now())
    run = in_thread(UpdateRun.claim, run.pk)  # type: ignore[assignment]
    assert run is not None
    publish(run, "Waiting for CLMS to answer its health check", step="health")
    server = serve()
    page = open_page(browser, server, school_admin)
    page.goto(f"{server.url}/updates/runs/{run.pk}/")
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    # Longer than twice the Redis client's 5 s socket timeout, in silence.
    page.wait_for_timeout(12_000)
    publish(run, "Health check passed", step="health", percent=95)
    expect(page.get_by_test_id("run-log")).to_contain_text("Health check passed")
    assert page.locator("#run-live").get_attribute("data-drops") is None
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    assert "TimeoutError" not in server.log_text()
    page.context.close()


def test_a_failing_run_shows_the_rollback_live(
    browser, serve, school_viewer, shots
) -> None:
    run = make_run(make_release("1.1.0"), scheduled_for=timezone.now())
    run = in_thread(UpdateRun.claim, run.pk)  # type: ignore[assignment]
    assert run is not None
    publish(run, "Containers recreated", step="apply", percent=70)
    server = serve()
    page = open_page(browser, server, school_viewer)
    page.goto(f"{server.url}/updates/runs/{run.pk}/")
    expect(page.get_by_test_id("connection")).to_have_text("Live")

    publish(run, "Waiting for /health", step="health", percent=80)
    in_thread(run.start_rollback, "the health check never passed (HTTP 500 five times)")
    expect(page.get_by_test_id("run-state")).to_have_text("Rolling back")
    expect(page.locator("#run-rollback")).to_be_visible()
    expect(page.locator('[data-step="health"]')).to_have_attribute(
        "data-state", "failed"
    )
    publish(run, "Old containers started again", step="rollback_containers", percent=90)
    expect(page.get_by_test_id("run-log")).to_contain_text(
        "Old containers started again"
    )
    shots(page, "10-progress-rolling-back")
    in_thread(run.finish_rollback)
    expect(page.get_by_test_id("run-state")).to_have_text("Rolled back")
    expect(page.get_by_test_id("connection")).to_contain_text("Finished")
    expect(page.locator('[data-step="rollback_containers"]')).to_have_attribute(
        "data-state", "done"
    )
    expect(page.locator('[data-step="commit"]')).to_have_attribute(
        "data-state", "skipped"
    )
    shots(page, "11-progress-rolled-back")
    page.context.close()


def test_a_viewer_on_a_narrow_screen_sees_everything_read_only(
    browser, serve, school_viewer, shots
) -> None:
    make_release(
        "1.0.2", critical=True, force_after=timezone.now() + timedelta(days=2, hours=3)
    )
    AgentState.objects.update_or_create(
        pk=1,
        defaults={
            "installed_version": "1.0.0",
            "offline": True,
            "offline_reason": "vendor: could not connect within 5 s",
            "offline_since": timezone.now() - timedelta(hours=3),
        },
    )
    server = serve()
    page = open_page(browser, server, school_viewer, width=390)
    banner = page.get_by_test_id("update-banner")
    expect(banner).to_contain_text("Critical update")
    expect(banner.locator(".countdown")).to_contain_text("2 d")
    expect(banner.get_by_role("button", name="Hide")).to_have_count(0)
    expect(page.get_by_text("vendor: could not connect within 5 s")).to_be_visible()
    expect(page.get_by_role("button", name="Check now")).to_have_count(0)
    expect(page.get_by_role("link", name="Update now…")).to_have_count(0)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    shots(page, "12-manager-viewer-narrow")
    for name, link in (
        ("13-offline-narrow", "Offline"),
        ("14-backups-narrow", "Backups"),
    ):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_test_id("update-banner")).to_contain_text("Critical update")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{link} scrolls sideways on a phone ({width}px)"
        shots(page, name)
    page.context.close()


def test_an_admin_blocked_after_rolling_back_below_a_critical_release_finds_the_way_out(
    browser, serve, school_admin, shots
) -> None:
    """Issue 15's dead end, clicked through: blocked at once, one button out."""
    server = serve()
    page = open_page(browser, server, school_admin, width=390)
    blocked_after_a_rollback_below_it()
    page.goto(server.url + "/")
    # Home is the blocking dialog; it leads to Updates.
    page.get_by_role("link", name="Go to Updates and apply it").click()
    card = page.get_by_test_id("next-step")
    expect(card).to_have_attribute("data-situation", "blocked")
    expect(card).to_contain_text("CLMS is blocked")
    shots(page, "15-blocked-after-rollback-way-out")
    card.get_by_role("link", name="Apply CLMS 1.0.3 now…").click()
    expect(page.locator("h1")).to_contain_text("to 1.0.3 now?")
    expect(page.locator("main")).to_contain_text("rolled back before")
    page.get_by_role("button", name="Yes, update now").click()
    expect(page.get_by_test_id("run-state")).to_be_visible()
    run = UpdateRun.objects.get(to_version="1.0.3")
    assert page.url.endswith(f"/updates/runs/{run.pk}/")
    assert run.forced
    page.context.close()
