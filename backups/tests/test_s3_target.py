"""A verified backup is copied to S3-compatible storage and comes back intact.

The S3 server is moto's server mode on a free loopback port (real HTTP, real
boto3 and django-storages on our side); it stands in for the internet.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from backups import copying, operations, retention, verifying
from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_endpoint(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    settings.BACKUP_COPY_TARGET = "s3"
    settings.BACKUP_S3_BUCKET = "school-backups"
    settings.BACKUP_S3_ENDPOINT_URL = endpoint
    settings.BACKUP_S3_ACCESS_KEY_ID = "test-key"
    settings.BACKUP_S3_SECRET_ACCESS_KEY = "test-secret"
    settings.BACKUP_S3_PREFIX = "clms/"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="school-backups")
    yield endpoint
    server.stop()


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
    retention.delete_backup(backup.pk)
    remaining = _keys(s3_endpoint)
    assert f"clms/{backup.file_name}" not in remaining
    assert f"clms/{newer.file_name}" in remaining


def test_preflight_reports_a_missing_bucket(clms_db, s3_endpoint, settings):
    operations.check_target_writable()
    settings.BACKUP_S3_BUCKET = "no-such-bucket"
    with pytest.raises(BackupError, match="no-such-bucket"):
        operations.check_target_writable()
