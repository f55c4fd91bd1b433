"""A verified backup is copied to S3-compatible storage and comes back intact.

The S3 server is moto's server mode on a free loopback port (real HTTP, real
boto3 and django-storages on our side); it stands in for the internet.
"""

from __future__ import annotations

import boto3
import pytest

from backups import actions, copying, operations, tasks, verifying
from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget
from clms_updates.actions import VIA_API, Actor
from clms_updates.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def s3_endpoint(settings, moto_s3) -> str:  # type: ignore[no-untyped-def]
    endpoint = str(moto_s3.meta.endpoint_url)
    settings.BACKUP_COPY_TARGET = "s3"
    settings.BACKUP_S3_BUCKET = "school-backups"
    settings.BACKUP_S3_ENDPOINT_URL = endpoint
    settings.BACKUP_S3_ACCESS_KEY_ID = "test-key"
    settings.BACKUP_S3_SECRET_ACCESS_KEY = "test-secret"
    settings.BACKUP_S3_PREFIX = "clms/"
    moto_s3.create_bucket(Bucket="school-backups")
    return endpoint


def _keys(endpoint: str) -> set[str]:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    listing = client.list_objects_v2(Bucket="school-backups")
    return {o["Key"] for o in listing.get("Contents", [])}


def test_a_verified_backup_round_trips_through_s3(clms_db, s3_endpoint):
    backup = operations.create_verified_backup(reason="t", clms_version="1")
    location = f"s3://school-backups/clms/{backup.file_name}"
    assert [c["location"] for c in backup.copies] == [location]
    assert location in backup.locations
    assert {f"clms/{backup.file_name}", f"clms/{backup.name}.manifest.json"} <= _keys(
        s3_endpoint
    )

    # Lose the local copy, bring it back from S3, and prove it still restores.
    LocalTarget().delete(backup.file_name)
    copying.fetch_from_copy(backup.pk)
    verified = verifying.verify_backup(backup.pk)
    assert verified.status == Backup.Status.VERIFIED

    newer = operations.create_verified_backup(reason="t2", clms_version="1")
    actions.delete_backup(backup.pk, actor=Actor.system())
    remaining = _keys(s3_endpoint)
    assert f"clms/{backup.file_name}" not in remaining
    assert f"clms/{newer.file_name}" in remaining


def test_preflight_reports_a_missing_bucket(clms_db, s3_endpoint, settings):
    operations.check_target_writable()
    settings.BACKUP_S3_BUCKET = "no-such-bucket"
    with pytest.raises(BackupError, match="no-such-bucket"):
        operations.check_target_writable()


def test_an_admin_copies_a_backup_through_the_api_and_both_locations_are_listed(
    clms_db,
    s3_endpoint,
    settings,
    school_admin,
    admin_api,
    django_capture_on_commit_callbacks,
):
    settings.BACKUP_COPY_TARGET = ""  # made without a copy, as before S3 was set up
    backup = operations.create_verified_backup(reason="t", clms_version="1")
    assert backup.copies == []
    settings.BACKUP_COPY_TARGET = "s3"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_api.post(f"/api/backups/{backup.pk}/copy/")
    assert response.status_code == 202
    assert len(callbacks) == 1
    tasks.copy_backup_task(backup.pk, Actor(user=school_admin, via=VIA_API).to_task())

    local = LocalTarget().location(backup.file_name)
    remote = f"s3://school-backups/clms/{backup.file_name}"
    assert f"clms/{backup.file_name}" in _keys(s3_endpoint)
    detail = admin_api.get(f"/api/backups/{backup.pk}/").json()
    assert detail["locations"] == [local, remote]
    assert detail["copies"][0]["target"] == "s3"
    listed = admin_api.get("/api/backups/").json()["results"]
    assert [b["locations"] for b in listed if b["id"] == backup.pk] == [[local, remote]]
    entry = AuditEntry.objects.get(action="backup.copy", target=backup.name)
    assert entry.detail["location"] == remote and entry.user_id == school_admin.pk


def test_a_lost_local_file_is_fetched_through_the_api_and_verified_again(
    clms_db, s3_endpoint, school_admin, admin_api, django_capture_on_commit_callbacks
):
    backup = operations.create_verified_backup(reason="t", clms_version="1")
    LocalTarget().delete(backup.file_name)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_api.post(f"/api/backups/{backup.pk}/fetch/")
    assert response.status_code == 202 and len(callbacks) == 1
    tasks.fetch_backup_task(backup.pk, Actor(user=school_admin, via=VIA_API).to_task())

    backup.refresh_from_db()
    assert LocalTarget().exists(backup.file_name)
    assert backup.status == Backup.Status.VERIFIED
    assert AuditEntry.objects.filter(action="backup.fetch", target=backup.name).exists()
