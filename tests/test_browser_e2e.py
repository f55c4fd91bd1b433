"""End to end in a browser: the admin updates the demo CLMS stack by clicking.

Everything is real: the vendor server signs and serves the release, the page's
"Check now" verifies it, "Update now" hands the run to a real Celery worker that
drives the pipeline against the demo stack on a real Docker engine, and the
progress page follows the worker's progress over the WebSocket to the end.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from clms_updates import composecli
from devtools.demo_stack import releases
from tests.browser_support import (  # noqa: F401 - fixtures used by name
    browser_fixture,
    expect,
    open_page,
    serve_fixture,
    shots_fixture,
)
from tests.e2e_support import School, school_fixture  # noqa: F401 - fixture
from updates import runtime
from updates.compose import stack
from updates.models import AgentState, UpdateRun

pytestmark = [
    pytest.mark.browser,
    pytest.mark.services,
    pytest.mark.docker,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

STEPS = (
    "preflight",
    "fetch",
    "verify",
    "backup",
    "maintenance",
    "apply",
    "migrate",
    "health",
    "commit",
)


def _check_and_update_now(page, version: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Check now").click()
    expect(page.locator(".msg-success")).to_contain_text(f"{version} is available")
    expect(page.locator("#release-title")).to_have_text(f"CLMS {version} is available")
    page.get_by_role("link", name="Update now…").click()
    page.get_by_role("button", name="Yes, update now").click()
    page.wait_for_url("**/updates/runs/*/")
    # The page is following before the worker gets far.
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    page.evaluate("window.__notReloaded = true")


def test_an_admin_updates_the_demo_stack_from_the_page_and_watches_it_live(
    browser, serve, school: School, school_admin, shots
) -> None:
    school.publish("1.0.1", "1.0.1")
    server = serve(**school.env)
    school.start_worker()
    page = open_page(browser, server, school_admin)

    _check_and_update_now(page, "1.0.1")
    expect(page.get_by_test_id("run-state")).to_have_text("Succeeded", timeout=180_000)
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
    expect(page.locator("#run-cancel")).to_be_hidden()  # a started run is not cancelled
    live_times = [
        page.locator(f"#run-{t}").inner_text() for t in ("started", "finished")
    ]
    for step in STEPS:
        expect(page.locator(f'[data-step="{step}"]')).to_have_attribute(
            "data-state", "done"
        )
    expect(page.get_by_test_id("run-log")).to_contain_text("1.0.1")
    shots(page, "20-e2e-update-succeeded")

    run = UpdateRun.objects.get()
    assert run.state == UpdateRun.State.SUCCEEDED
    assert AgentState.load().installed_version == "1.0.1"
    assert school.health()["version"] == "1.0.1"

    page.reload()  # the server-rendered page shows the recorded step timings
    expect(page.locator('[data-step="apply"] .step-time')).to_contain_text("·")
    # Started and Finished read the same live as the page renders them.
    shape = re.compile(r"^[A-Z][a-z]{2} \d{2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} \S+$")
    rendered = [page.locator(f"#run-{t}").inner_text() for t in ("started", "finished")]
    for text in live_times + rendered:
        assert shape.match(text.strip()), (live_times, rendered)
    page.get_by_role("link", name="Updates", exact=True).click()
    expect(page.get_by_test_id("installed-version")).to_have_text("CLMS 1.0.1")
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_test_id("history")).to_contain_text("1.0.0 → 1.0.1")
    shots(page, "21-e2e-history")

    # A manual rollback from the page: confirmation, then followed live.
    page.get_by_role("link", name="Roll back…").click()
    page.get_by_role("button", name="Roll back to 1.0.0").click()
    expect(page.locator(".field-error").first).to_contain_text("Say why")
    page.get_by_label("Why are you rolling back?").fill("Teachers report slow loans")
    page.get_by_label("I understand CLMS will be in maintenance mode").check()
    shots(page, "24-e2e-rollback-confirmation")
    page.get_by_role("button", name="Roll back to 1.0.0").click()
    page.wait_for_url("**/updates/runs/*/")
    expect(page.get_by_test_id("run-state")).to_have_text("Succeeded", timeout=180_000)
    shots(page, "25-e2e-manual-rollback-done")
    rollback = UpdateRun.objects.get(kind=UpdateRun.Kind.ROLLBACK)
    assert rollback.to_version == "1.0.0"
    assert AgentState.load().installed_version == "1.0.0"
    assert school.health()["version"] == "1.0.0"
    page.context.close()


def test_a_failing_update_is_rolled_back_live_on_the_page(
    browser, serve, school: School, school_admin, shots
) -> None:
    school.publish("1.1.0", "1.1.0-unhealthy")
    server = serve(**school.env)
    school.start_worker()
    page = open_page(browser, server, school_admin)

    _check_and_update_now(page, "1.1.0")
    expect(page.get_by_test_id("run-state")).to_have_text(
        "Rolling back", timeout=180_000
    )
    expect(page.locator("#run-rollback")).to_be_visible()
    shots(page, "22-e2e-rolling-back")
    expect(page.get_by_test_id("run-state")).to_have_text(
        "Rolled back", timeout=180_000
    )
    expect(page.locator('[data-step="health"]')).to_have_attribute(
        "data-state", "failed"
    )
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
    shots(page, "23-e2e-rolled-back")

    assert UpdateRun.objects.get().state == UpdateRun.State.ROLLED_BACK
    assert AgentState.load().installed_version == "1.0.0"
    assert school.health()["version"] == "1.0.0"
    page.context.close()


def test_a_release_needing_a_new_setting_waits_for_the_admin_who_fills_it_in(
    browser, serve, school: School, school_admin, shots
) -> None:
    """1.0.0 -> 1.1.0 adds the search service, which needs a key from the school."""
    school.publish(
        "1.1.0",
        "1.1.0",
        compose=releases.compose_file(school.images["1.1.0"], search=True),
    )
    server = serve(**school.env)
    school.start_worker()
    page = open_page(browser, server, school_admin)

    _check_and_update_now(page, "1.1.0")
    expect(page.get_by_test_id("run-state")).to_have_text(
        "Needs your input", timeout=180_000
    )
    expect(page.locator("#run-waiting")).to_contain_text("SEARCH_API_KEY")
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
    shots(page, "26-e2e-needs-input")
    run = UpdateRun.objects.get()
    assert run.state == UpdateRun.State.WAITING
    assert school.health()["version"] == "1.0.0"  # nothing changed meanwhile

    page.get_by_test_id("give-settings").click()
    expect(page.get_by_test_id("needs-input")).to_contain_text("SEARCH_API_KEY")
    page.get_by_test_id("setting-SEARCH_API_KEY").fill("key-from-the-portal")
    shots(page, "27-e2e-settings-form")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".msg-success")).to_contain_text("Saved SEARCH_API_KEY")
    expect(page.get_by_test_id("needs-input")).to_have_count(0)
    # The secret is never shown again, not even in the form.
    assert "key-from-the-portal" not in page.content()

    page.goto(f"{server.url}/updates/runs/{run.pk}/")
    expect(page.get_by_test_id("run-state")).to_have_text("Succeeded", timeout=180_000)
    shots(page, "28-e2e-setting-given-update-done")
    assert AgentState.load().installed_version == "1.1.0"
    assert school.health()["version"] == "1.1.0"
    directory = school.stack.env_file.parent
    listed = by_hand(directory, "ps")
    assert "search" in listed, listed
    before = stack.container_ids(runtime.docker_client(), school.stack.project)
    assert sorted(before) == ["app", "search", "worker"]
    by_hand(directory, "up", "-d")
    assert stack.container_ids(runtime.docker_client(), school.stack.project) == before
    page.context.close()


def by_hand(directory, *args: str) -> str:  # type: ignore[no-untyped-def]
    """The compose CLI as an admin runs it in the project folder (no flags)."""
    result = subprocess.run(
        [*composecli.find_cli().argv, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"PATH": os.environ["PATH"], "DOCKER_HOST": os.environ["DOCKER_HOST"]},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr
