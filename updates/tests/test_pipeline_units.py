"""Pipeline parts that need no engine: health rule, maintenance flag, lease, plans."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from clms_updates.manifest import HealthCheck
from updates.models import UpdateRun
from updates.pipeline import health, maintenance
from updates.pipeline.errors import StepFailed
from updates.pipeline.lease import take_over
from updates.pipeline.plan import plan_for
from updates.pipeline.records import begin_step, end_step, is_done
from updates.pipeline.reporting import report_body
from updates.tests.factories import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def clms_app(settings) -> Iterator[list[tuple[int, dict[str, Any]]]]:  # type: ignore[no-untyped-def]
    """A stand-in CLMS /health answering the queued (status, body) pairs in turn."""
    answers: list[tuple[int, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.CLMS_APP_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield answers
    server.shutdown()
    server.server_close()


SPEC = HealthCheck(
    path="/health",
    body_field="status",
    body_value="ok",
    successes=3,
    interval_ms=50,
    timeout_seconds=2,
)
GOOD = (200, {"status": "ok", "version": "1.0.1"})


def test_health_needs_consecutive_good_answers_and_a_bad_one_restarts_the_count(
    clms_app,
) -> None:  # type: ignore[no-untyped-def]
    clms_app.extend([GOOD, GOOD, (503, {"status": "failing"}), GOOD, GOOD, GOOD])
    streaks: list[int] = []

    health.wait_healthy(
        SPEC, expect_version="1.0.1", on_probe=lambda _, s: streaks.append(s)
    )

    assert streaks == [1, 2, 0, 1, 2, 3]


def test_health_that_never_passes_fails_with_the_last_answer(clms_app) -> None:  # type: ignore[no-untyped-def]
    clms_app.append((503, {"status": "failing"}))
    with pytest.raises(StepFailed) as caught:
        health.wait_healthy(SPEC)
    assert caught.value.code == "health_check_failed"
    assert "status='failing'" in caught.value.message
    assert "within 2 s" in caught.value.message


def test_an_answer_from_the_wrong_version_is_not_healthy(clms_app) -> None:  # type: ignore[no-untyped-def]
    clms_app.append((200, {"status": "ok", "version": "1.0.0"}))
    result = health.probe(SPEC, expect_version="1.0.1")
    assert result.healthy is False
    assert "reports version 1.0.0, expected 1.0.1" in result.reason


VERSION_SPEC = HealthCheck(
    path="/health",
    body_field="version",
    body_value="1.0.2",
    successes=1,
    interval_ms=50,
    timeout_seconds=1,
)


def test_a_check_naming_the_release_version_expects_the_installed_one_before_the_update(
    clms_app,
) -> None:  # type: ignore[no-untyped-def]
    clms_app.append((200, {"status": "ok", "version": "1.0.0"}))
    as_written = health.probe(VERSION_SPEC, expect_version="1.0.0")
    assert as_written.healthy is False  # the bug preflight had

    spec = health.for_version(VERSION_SPEC, written_for="1.0.2", version="1.0.0")

    assert spec.body_value == "1.0.0"
    assert (spec.path, spec.expected_status, spec.body_field) == (
        "/health",
        200,
        "version",
    )
    assert health.probe(spec, expect_version="1.0.0").healthy is True


def test_the_installed_version_must_still_answer_the_status_the_release_expects(
    clms_app,
) -> None:  # type: ignore[no-untyped-def]
    clms_app.append((503, {"status": "failing", "version": "1.0.0"}))
    spec = health.for_version(VERSION_SPEC, written_for="1.0.2", version="1.0.0")
    result = health.probe(spec, expect_version="1.0.0")
    assert result.healthy is False
    assert "answered 503" in result.reason


def test_a_body_value_that_is_not_the_release_version_applies_to_every_version() -> (
    None
):
    assert health.for_version(SPEC, written_for="1.0.2", version="1.0.0") == SPEC
    other = HealthCheck(body_field="version", body_value="1.0.1")
    assert health.for_version(other, written_for="1.0.2", version="1.0.0") == other


def test_a_crashed_container_fails_the_check_at_once(clms_app) -> None:  # type: ignore[no-untyped-def]
    clms_app.append((503, {"status": "unavailable"}))
    with pytest.raises(StepFailed) as caught:
        health.wait_healthy(SPEC, crashed=lambda: "Container app exited (code 3)")
    assert caught.value.code == "container_crashed"


def test_the_maintenance_flag_is_written_whole_and_lifted(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.CLMS_STATE_DIR = tmp_path / "state"
    maintenance.enter(7, "Updating to 1.0.1")
    flag = json.loads((tmp_path / "state" / "maintenance.json").read_text())
    assert (flag["run_id"], flag["message"]) == (7, "Updating to 1.0.1")
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["maintenance.json"]
    assert maintenance.lift() is True
    assert maintenance.current() is None
    assert maintenance.lift() is False


def test_a_stale_run_is_taken_over_once_and_a_live_one_never() -> None:
    run = make_run(scheduled_for=timezone.now())
    UpdateRun.claim(run.pk)
    old = timezone.now() - timedelta(minutes=5)
    UpdateRun.objects.filter(pk=run.pk).update(worker="dead", heartbeat_at=old)

    taken = take_over(run.pk, "worker-b")
    again = take_over(run.pk, "worker-c")

    assert taken is not None and taken.worker == "worker-b"
    assert again is None


def test_step_records_survive_a_resume_and_say_when_each_ran() -> None:
    run = make_run(scheduled_for=timezone.now())
    begin_step(run, "apply", "Recreating", percent=57)
    begin_step(run, "apply", "Recreating (resumed)", percent=57)
    assert not is_done(run, "apply")
    end_step(run, "apply", "apply: done", detail="2 containers")

    run.refresh_from_db()
    (entry,) = run.steps
    assert entry["status"] == "done" and "resumed_at" in entry
    assert entry["seconds"] is not None and entry["detail"] == "2 containers"
    assert is_done(run, "apply")


def test_a_rollback_without_a_recorded_update_says_why_it_cannot_run() -> None:
    run = make_run(
        release=None,
        kind=UpdateRun.Kind.ROLLBACK,
        from_version="1.0.1",
        to_version="1.0.0",
        scheduled_for=timezone.now(),
    )
    with pytest.raises(StepFailed) as caught:
        plan_for(run)
    assert caught.value.code == "no_previous_version"


def test_a_manual_rollback_is_reported_as_one_not_as_an_install() -> None:
    update = make_run(state=UpdateRun.State.SUCCEEDED)
    back = make_run(
        update.release,
        kind=UpdateRun.Kind.ROLLBACK,
        state=UpdateRun.State.SUCCEEDED,
        from_version="1.1.0",
        to_version="1.0.0",
    )
    assert report_body(update)["kind"] == "update"
    assert report_body(back)["kind"] == "rollback"
    assert report_body(back)["from_version"] == "1.1.0"


def test_a_wait_for_health_says_how_long_it_may_still_take() -> None:
    """Past the step's typical time, the clock alone says "about 2 s left";
    the health wait knows its timeout and says that instead."""
    from updates.pipeline.context import Context
    from updates.pipeline.steps import UPDATE_POSITIONS

    run = make_run(state=UpdateRun.State.RUNNING)
    position = UPDATE_POSITIONS["health"]
    # Reporting reads only the run and the position, never the plan.
    ctx = Context(run=run, plan=None, position=position)  # type: ignore[arg-type]
    ctx.step_started -= 60  # a minute into a step that typically takes 5 s
    ctx.report(0, "Health check: not healthy yet")
    guessed = UpdateRun.objects.get(pk=run.pk).eta_seconds
    assert guessed is not None and guessed <= 1 + position.seconds_after + 1
    ctx.report(
        0, "Health check: not healthy yet; waiting up to 28 s more", step_left=28
    )
    assert UpdateRun.objects.get(pk=run.pk).eta_seconds == round(
        28 + position.seconds_after
    )
