"""Login, logout and what each group may do."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from clms_updates import audit
from clms_updates.actions import Actor
from clms_updates.constants import SCHOOL_ADMIN_GROUP, SCHOOL_VIEWER_GROUP
from clms_updates.models import AuditEntry
from clms_updates.permissions import is_school_admin, is_school_viewer

pytestmark = pytest.mark.django_db


def test_the_two_school_groups_exist_after_migrate() -> None:
    names = set(Group.objects.values_list("name", flat=True))
    assert {SCHOOL_ADMIN_GROUP, SCHOOL_VIEWER_GROUP} <= names


def test_login_page_renders(client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_login_with_a_wrong_password_says_so(client, school_admin) -> None:
    response = client.post(
        "/accounts/login/", {"username": school_admin.username, "password": "nope"}
    )
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_login_then_logout(client, school_admin) -> None:
    response = client.post(
        "/accounts/login/",
        {"username": school_admin.username, "password": "pw-school-admin-user"},
    )
    assert response.status_code == 302
    # School staff land on the update manager.
    home = client.get("/")
    assert (home.status_code, home["Location"]) == (302, "/updates/")
    assert client.get("/updates/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # back to the login page


def test_pages_need_a_login(client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_group_permissions(school_admin, school_viewer, outsider, vendor_staff) -> None:
    assert is_school_admin(school_admin) and is_school_viewer(school_admin)
    assert is_school_viewer(school_viewer) and not is_school_admin(school_viewer)
    assert not is_school_viewer(outsider)
    assert is_school_admin(vendor_staff)  # a superuser may do everything


def test_vendor_staff_reach_the_admin_and_others_do_not(
    client, vendor_staff, school_viewer
) -> None:
    client.force_login(school_viewer)
    assert client.get("/admin/").status_code == 302
    client.force_login(vendor_staff)
    assert client.get("/admin/").status_code == 200


def test_audit_record_keeps_user_address_and_detail(rf, school_admin) -> None:
    request = rf.post("/anything", REMOTE_ADDR="10.1.2.3")
    request.user = school_admin
    entry = audit.record(
        "backup.restore",
        actor=Actor.from_request(request),
        target="backup 5",
        reason="test",
    )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.username == school_admin.username
    assert stored.address == "10.1.2.3"
    assert stored.detail == {"reason": "test"}
    assert stored.action == "backup.restore"
    assert stored.via == "page"


def test_seeding_the_demo_again_keeps_the_admin_logged_in(
    settings, tmp_path, monkeypatch
) -> None:
    """A restarted `make run` seeds again: the same passwords, and the same
    hashes, so the browser's session stays valid."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from clms_updates.management.commands import seed_demo

    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(seed_demo, "APP_SEED_COMMANDS", ())
    call_command("seed_demo", stdout=StringIO())
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    assert client.get("/updates/").status_code == 200
    before = User.objects.get(username="admin").password
    call_command("seed_demo", stdout=StringIO())
    assert User.objects.get(username="admin").password == before
    assert client.get("/updates/").status_code == 200  # still logged in
