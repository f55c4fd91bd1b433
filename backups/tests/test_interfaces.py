"""The REST API and the Backup manager page: who may do what, and what happens."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from backups.models import Backup
from backups.tests.factories import make_backup
from clms_updates.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _backup_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.CLMS_DATABASE_URL = f"sqlite:///{tmp_path / 'none.sqlite3'}"


def test_anonymous_callers_are_refused():
    response = APIClient().get("/api/backups/")
    assert response.status_code in (401, 403)


def test_a_viewer_can_list_but_not_create(viewer_api):
    backup = make_backup()
    listing = viewer_api.get("/api/backups/")
    assert listing.status_code == 200
    assert listing.json()["results"][0]["name"] == backup.name
    assert viewer_api.get(f"/api/backups/{backup.pk}/").json()["status"] == "verified"
    assert viewer_api.post("/api/backups/", {}).status_code == 403
    assert viewer_api.post(f"/api/backups/{backup.pk}/verify/").status_code == 403
    assert viewer_api.delete(f"/api/backups/{backup.pk}/").status_code == 403


def test_an_outsider_cannot_even_list(outsider):
    client = APIClient()
    client.force_authenticate(outsider)
    assert client.get("/api/backups/").status_code == 403


def test_an_admin_creates_a_backup_that_runs_in_a_task(
    admin_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_api.post(
            "/api/backups/", {"reason": "before term"}, format="json"
        )
    assert response.status_code == 202
    backup = Backup.objects.get(pk=response.json()["id"])
    assert backup.status == Backup.Status.PENDING and backup.reason == "before term"
    assert len(callbacks) == 1


def test_restore_needs_the_typed_name_and_a_verified_backup(
    admin_api, django_capture_on_commit_callbacks
):
    good = make_backup()
    unverified = make_backup(status=Backup.Status.CREATED)
    wrong = admin_api.post(
        f"/api/backups/{good.pk}/restore/", {"confirm": "nope"}, format="json"
    )
    assert wrong.status_code == 400
    assert good.name in str(wrong.json())
    refused = admin_api.post(
        f"/api/backups/{unverified.pk}/restore/",
        {"confirm": unverified.name},
        format="json",
    )
    # An unverified backup is refused by its state (409), a mistyped name is 400.
    assert refused.status_code == 409
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ok = admin_api.post(
            f"/api/backups/{good.pk}/restore/",
            {"confirm": good.name, "reason": "r"},
            format="json",
        )
    assert ok.status_code == 202
    assert len(callbacks) == 2  # the "waiting for a worker" push and the task


def test_delete_refuses_the_newest_verified_and_held_backups(admin_api):
    older = make_backup()
    held = make_backup(hold="update-run:4")
    newest = make_backup()
    assert admin_api.delete(f"/api/backups/{newest.pk}/").status_code == 409
    response = admin_api.delete(f"/api/backups/{held.pk}/")
    assert (
        response.status_code == 409
        and "held by update-run:4" in response.json()["detail"]
    )
    assert admin_api.delete(f"/api/backups/{older.pk}/").status_code == 204
    assert not Backup.objects.filter(pk=older.pk).exists()
    assert AuditEntry.objects.filter(action="backup.delete", target=older.name).exists()


def test_the_page_needs_a_login_and_lists_backups(client, school_viewer):
    backup = make_backup(size=2048)
    assert client.get("/backups/").status_code == 302
    client.force_login(school_viewer)
    page = client.get("/backups/")
    assert page.status_code == 200
    assert backup.name in page.content.decode()
    assert "Back up now" not in page.content.decode()
    assert client.post("/backups/create/").status_code == 403


def test_the_page_restore_refuses_a_mistyped_name(client, school_admin):
    backup = make_backup()
    client.force_login(school_admin)
    page = client.get("/backups/").content.decode()
    assert f"Type <strong>{backup.name}</strong> to confirm" in page
    response = client.post(
        f"/backups/{backup.pk}/restore/", {"confirm": "wrong"}, follow=True
    )
    assert "Nothing was restored" in response.content.decode()


def test_a_failed_backup_is_never_started_or_verified_again():
    from backups import creating, verifying
    from backups.errors import BackupError

    failed = make_backup(status=Backup.Status.FAILED)
    with pytest.raises(BackupError, match="was not started"):
        creating.run_backup(failed.pk)
    with pytest.raises(BackupError, match="only a created or verified"):
        verifying.verify_backup(failed.pk)
    failed.refresh_from_db()
    assert failed.status == Backup.Status.FAILED


def test_illegal_transitions_are_refused():
    from clms_updates.statemachine import InvalidTransition as IllegalTransition

    backup = make_backup(status=Backup.Status.CREATED)
    with pytest.raises(IllegalTransition):
        backup.mark_verified()
    backup.fail("broken")
    with pytest.raises(IllegalTransition):
        backup.start_verify()


def test_a_busy_backup_on_the_page_follows_its_progress_socket(client, school_admin):
    busy = make_backup(status=Backup.Status.RUNNING, message="Dumped 3 MiB")
    client.force_login(school_admin)
    page = client.get("/backups/").content.decode()
    assert f'data-progress="/ws/progress/backup/{busy.pk}/"' in page
    assert "Dumped 3 MiB" in page
    assert "backups/progress.js" in page


def _with_local_file(backup: Backup, settings) -> Backup:  # type: ignore[no-untyped-def]
    backup.file_name = f"{backup.name}.dump.zst"
    backup.save(update_fields=["file_name"])
    settings.BACKUP_DIR.mkdir(parents=True, exist_ok=True)
    (settings.BACKUP_DIR / backup.file_name).write_bytes(b"dump")
    return backup


def _s3_copy_target(settings) -> None:  # type: ignore[no-untyped-def]
    # Only the label is needed here; nothing talks to the bucket.
    settings.BACKUP_COPY_TARGET = "s3"
    settings.BACKUP_S3_BUCKET = "school-backups"
    settings.BACKUP_S3_PREFIX = "clms/"
    settings.BACKUP_S3_ENDPOINT_URL = "http://127.0.0.1:9"


def test_copy_is_refused_with_a_reason_when_no_second_target_is_configured(
    admin_api, settings, django_capture_on_commit_callbacks
):
    settings.BACKUP_COPY_TARGET = ""
    backup = _with_local_file(make_backup(), settings)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_api.post(f"/api/backups/{backup.pk}/copy/")
    assert response.status_code == 409
    assert "BACKUP_COPY_TARGET=s3" in response.json()["detail"]
    assert callbacks == []


def test_copy_of_an_unverified_backup_is_refused(admin_api, settings):
    _s3_copy_target(settings)
    backup = _with_local_file(make_backup(status=Backup.Status.CREATED), settings)
    response = admin_api.post(f"/api/backups/{backup.pk}/copy/")
    assert response.status_code == 409
    assert "only a verified backup is copied" in response.json()["detail"]


def test_a_viewer_cannot_copy_or_fetch(viewer_api, settings):
    _s3_copy_target(settings)
    backup = _with_local_file(make_backup(), settings)
    assert viewer_api.post(f"/api/backups/{backup.pk}/copy/").status_code == 403
    assert viewer_api.post(f"/api/backups/{backup.pk}/fetch/").status_code == 403


def test_fetch_is_refused_while_the_local_file_is_there(admin_api, settings):
    _s3_copy_target(settings)
    backup = _with_local_file(make_backup(), settings)
    backup.copies = [
        {"target": "s3", "location": f"s3://school-backups/clms/{backup.file_name}"}
    ]
    backup.save(update_fields=["copies"])
    response = admin_api.post(f"/api/backups/{backup.pk}/fetch/")
    assert response.status_code == 409
    assert "already there" in response.json()["detail"]


def test_the_page_offers_copying_to_admins_only(
    client, school_admin, school_viewer, settings
):
    _s3_copy_target(settings)
    backup = _with_local_file(make_backup(), settings)
    button = "Copy to s3://school-backups/clms/"
    client.force_login(school_admin)
    assert button in client.get("/backups/").content.decode()
    client.force_login(school_viewer)
    assert button not in client.get("/backups/").content.decode()
    assert client.post(f"/backups/{backup.pk}/copy/").status_code == 403


def test_the_page_explains_why_there_is_no_copy_button(client, school_admin, settings):
    settings.BACKUP_COPY_TARGET = ""
    backup = _with_local_file(make_backup(), settings)
    client.force_login(school_admin)
    page = client.get("/backups/").content.decode()
    assert "Copy to" not in page
    assert 'id="no-copy-target"' in page
    refused = client.post(f"/backups/{backup.pk}/copy/", follow=True)
    assert "No second backup target is configured" in refused.content.decode()


def test_the_list_shows_reason_version_and_times_with_their_zone(client, school_viewer):
    make_backup(reason="before the spring term", clms_version="1.0.2")
    client.force_login(school_viewer)
    page = client.get("/backups/").content.decode()
    assert "before the spring term" in page
    assert "<td>1.0.2</td>" in page
    assert "GMT" in page  # the school's zone (Europe/London in the tests)


def test_a_restore_is_followed_on_the_list_until_it_says_it_finished(
    client, school_admin
) -> None:
    from clms_updates import progress

    backup = make_backup()
    client.force_login(school_admin)
    answer = client.post(f"/backups/{backup.pk}/restore/", {"confirm": backup.name})
    assert answer["Location"] == f"/backups/?restoring={backup.pk}#backup-{backup.pk}"
    page = client.get(answer["Location"]).content.decode()
    assert 'data-until="restored restore_failed"' in page
    assert "Waiting for a worker to restore it" in page
    # The worker's last word (as ``restoring`` publishes it) ends the follow.
    backup.refresh_from_db()
    backup.restored_at = backup.created_at
    progress.publish(
        backup,
        "Restored into the CLMS database",
        step="restored",
        extra_fields=("restored_at",),
    )
    page = client.get(answer["Location"]).content.decode()
    assert "data-until" not in page
    assert "Restored into the CLMS database" in page
