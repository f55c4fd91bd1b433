"""Every installation state offers the action that moves it on (no dead end).

The table in ``updates.next_action`` is walked state by state: the update
manager shows the step, its button is there for an admin, and following it
reaches a page that can do it (never a redirect back with a refusal) or, for a
button, changes the state.
"""

from __future__ import annotations

import html

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clms_updates.models import AuditEntry
from updates import next_action
from updates.models import UpdateCheck, UpdateRun
from updates.next_action import Situation
from updates.tests.factories import make_run
from updates.tests.states import (
    STATES,
    blocked_after_a_rollback_below_it,
    blocked_with_a_run_after_the_deadline,
    critical,
    installed,
    scheduled,
)

pytestmark = pytest.mark.django_db


def _refusals(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.message for m in get_messages(response.wsgi_request) if m.level >= 40]


@pytest.mark.parametrize("name", list(STATES))
def test_every_state_offers_the_action_that_moves_it_on(
    name: str, client: Client, school_admin
) -> None:
    arrange, situation = STATES[name]
    arrange()
    step = next_action.next_action()
    assert step.situation == situation

    client.force_login(school_admin)
    page = client.get(reverse("updates:manager"))
    assert page.status_code == 200
    text = page.content.decode()
    assert html.escape(step.label) in text, f"no {step.label!r} on the page"
    assert html.escape(step.url) in text, f"no way to {step.label!r} on the page"

    if step.method == "get":
        followed = client.get(step.url)
        assert followed.status_code == 200, f"{step.label!r} leads nowhere"
        assert not _refusals(followed)
        return
    checks = UpdateCheck.objects.count()
    followed = client.post(step.url)
    assert followed.status_code == 302
    if situation == Situation.UP_TO_DATE:
        # A check ran (what it found depends on the sources: not a refusal of it).
        assert UpdateCheck.objects.count() == checks + 1
        return
    assert not _refusals(followed), _refusals(followed)
    after = next_action.next_action()
    assert (after.situation, after.run) != (step.situation, step.run)


def test_an_admin_gets_out_of_a_block_after_rolling_back_below_a_critical_release(
    client: Client, school_admin
) -> None:
    """The whole way out, as the admin clicks it: manager → confirm → run."""
    blocked_after_a_rollback_below_it()
    client.force_login(school_admin)
    step = next_action.next_action()
    assert step.label == "Apply CLMS 1.0.3 now…"
    confirm = client.get(step.url)
    assert b"Yes, update now" in confirm.content
    assert b"rolled back before" in confirm.content
    started = client.post(
        reverse("updates:update_now"),
        {"version": "1.0.3", "force": "on", "confirmed": "True"},
    )
    run = UpdateRun.objects.get(to_version="1.0.3")
    assert started["Location"] == reverse("updates:run", args=[run.pk])
    assert run.forced  # the retry of a rolled-back release is an audited override
    assert AuditEntry.objects.filter(action="updates.override").exists()


def test_a_blocked_school_with_a_later_run_starts_it_now(
    client: Client, school_admin
) -> None:
    blocked_with_a_run_after_the_deadline()
    late = UpdateRun.objects.get()
    client.force_login(school_admin)
    client.post(reverse("updates:start_now", args=[late.pk]))
    late.refresh_from_db()
    assert late.state == UpdateRun.State.CANCELLED
    now = UpdateRun.objects.exclude(pk=late.pk).get()
    assert now.to_version == "1.0.3"
    assert now.scheduled_for <= timezone.now()


def test_a_viewer_sees_the_step_but_no_button_to_take_it(
    client: Client, school_viewer
) -> None:
    scheduled()
    client.force_login(school_viewer)
    text = client.get(reverse("updates:manager")).content.decode()
    assert 'data-situation="scheduled"' in text
    assert 'data-testid="next-action"' not in text
    assert "A school admin can take this step." in text


def test_the_rollback_form_warns_that_a_passed_deadline_blocks_at_once(
    client: Client, school_admin
) -> None:
    installed("1.0.3")
    make_run(
        critical(hours=-1),
        from_version="1.0.2",
        to_version="1.0.3",
        state=UpdateRun.State.SUCCEEDED,
        finished_at=timezone.now(),
    )
    client.force_login(school_admin)
    page = client.get(reverse("updates:rollback"))
    text = page.content.decode()
    if "rollback-critical" not in text:
        pytest.fail("no warning on the rollback form:\n" + text[-2000:])
    assert "it is blocked" in text


def test_the_api_answers_the_same_next_step(admin_api) -> None:
    blocked_after_a_rollback_below_it()
    answer = admin_api.get("/api/updates/latest").json()
    assert answer["release"]["version"] == "1.0.3"
    assert answer["release"]["rolled_back"] is True
    assert answer["next_action"]["situation"] == "blocked"
    assert answer["next_action"]["method"] == "GET"
    assert answer["next_action"]["url"].endswith("version=1.0.3&force=on")
