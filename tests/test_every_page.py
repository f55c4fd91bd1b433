"""Every school page in every installation state, as admin, viewer and nobody.

Fails on a server error, on a page an admin cannot open, and on a sentence the
state makes false. Widths on a phone are checked in a real browser
(``test_browser_phone.py``); this walks the whole grid quickly.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from backups.tests.factories import make_backup
from clms_updates import audit
from clms_updates.actions import Actor
from updates import releases
from updates.enforcement.state import enforcement_state
from updates.models import AgentState, OfflineBundle, UpdateRun
from updates.tests.states import STATES

pytestmark = pytest.mark.django_db

PAGES = [
    "home",
    "updates:manager",
    "updates:history",
    "updates:rollback",
    "updates:audit",
    "updates:notifications",
    "updates:enforcement",
    "updates:offline",
    "updates:run",
    "backups:list",
]
# Open to a viewer too (the rest are a school admin's).
VIEWER_PAGES = {
    "home",
    "updates:manager",
    "updates:history",
    "updates:enforcement",
    "updates:offline",
    "updates:run",
    "backups:list",
}


def _with_rows() -> None:
    """A backup, an audit entry and a bundle beside the state, so every table shows."""
    make_backup(reason="before update to 1.1.0", clms_version="1.0.2", size=123456)
    audit.record("updates.check", actor=Actor.system("test"), target="vendor")
    OfflineBundle.objects.create(
        file_name="clms-1.1.0.zip", sha256="0" * 64, size=10, version="1.1.0"
    )


def _url(name: str) -> str | None:
    if name == "updates:run":
        run = UpdateRun.objects.first()
        return reverse(name, args=[run.pk]) if run else None
    return reverse(name)


def false_sentences(text: str) -> list[str]:
    """Sentences the rows prove false, found in a page's text."""
    plain = re.sub(r"<[^>]+>", " ", text)
    plain = re.sub(r"\s+", " ", plain)
    wrong = []
    installed = AgentState.load().installed_version
    if (
        f"CLMS {installed} is available" in plain
        or f" {installed} is available" in plain
    ):
        wrong.append(f"says the installed {installed} is available")
    offered = releases.latest_release()
    if offered is not None and "No update available" in plain:
        wrong.append(f"says no update is available while {offered.version} is offered")
    state = enforcement_state()
    run = state.scheduled_run
    if (
        run is not None
        and state.deadline is not None
        and run.scheduled_for >= state.deadline
        and "before its deadline" in plain
    ):
        wrong.append("says a run after the deadline is before it")
    if not state.blocked and "CLMS is blocked until the critical update" in plain:
        wrong.append("shows the blocking dialog while not blocked")
    return wrong


@pytest.mark.parametrize("state", list(STATES))
def test_every_page_in_every_state_for_every_user(
    state: str, school_admin, school_viewer
) -> None:
    arrange, _ = STATES[state]
    arrange()
    _with_rows()
    for who, user in (
        ("admin", school_admin),
        ("viewer", school_viewer),
        ("nobody", None),
    ):
        client = Client()
        if user is not None:
            client.force_login(user)
        for name in PAGES:
            url = _url(name)
            if url is None:
                continue
            response = client.get(url, follow=True)
            where = f"{state}: {name} as {who}"
            assert response.status_code < 500, where
            if who == "nobody":
                final = (
                    response.redirect_chain[-1][0] if response.redirect_chain else url
                )
                assert final.startswith(reverse("login")) or response.status_code in (
                    200,
                    423,
                ), where
                continue
            if who == "admin" or name in VIEWER_PAGES:
                assert response.status_code in (200, 423), where
            else:
                assert response.status_code in (302, 403), where
            if response.status_code == 200 and "html" in response["Content-Type"]:
                wrong = false_sentences(response.content.decode())
                assert not wrong, f"{where}: {wrong}"


def test_the_false_sentence_check_catches_what_it_looks_for() -> None:
    """The checker itself: each rule finds its sentence."""
    STATES["critical run after its deadline"][0]()
    assert false_sentences("<p>CLMS 1.0.2 is available</p>")
    assert false_sentences("<p>No update available</p>")
    assert false_sentences("<p>scheduled for Tue, before its deadline Wed</p>")
    assert false_sentences(
        "<h1>CLMS is blocked until the critical update is installed</h1>"
    )
