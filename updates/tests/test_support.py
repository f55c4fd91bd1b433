"""The support bundle: everything support needs, nothing secret, admins only."""

from __future__ import annotations

import io
import json
import zipfile
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from backups.tests.factories import make_backup
from clms_updates.models import AuditEntry
from updates.models import UpdateRun
from updates.tests.factories import make_run

pytestmark = pytest.mark.django_db

VENDOR_KEY = "school-vendor-key-0f9e8d7c6b"
SMTP_PASSWORD = "smtp-password-for-the-library"


@pytest.fixture
def school(settings, tmp_path):  # type: ignore[no-untyped-def]
    """A compose project with a secret in its .env, a run that logged the key."""
    settings.UPDATES_VENDOR_API_KEY = VENDOR_KEY
    folder = tmp_path / "clms"
    folder.mkdir()
    (folder / "compose.yaml").write_text("services:\n  app:\n    image: clms/app\n")
    (folder / ".env").write_text(
        f"CLMS_HTTP_PORT=8080\nSMTP_PASSWORD={SMTP_PASSWORD}\n"
    )
    settings.CLMS_PROJECT_DIR = str(folder)
    settings.CLMS_COMPOSE_FILE = "compose.yaml"
    settings.CLMS_COMPOSE_ENV_FILE = str(folder / ".env")
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    make_run(
        state=UpdateRun.State.ROLLED_BACK,
        error_code="health_check_failed",
        log=f"[22:00:01] asked the vendor with key {VENDOR_KEY}\n[22:00:09] unhealthy\n",
    )
    make_backup(reason="before 1.1.0")


def _unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_an_admin_downloads_a_bundle_with_everything_and_no_secret(
    client, school_admin, school
) -> None:
    client.force_login(school_admin)
    answer = client.post(reverse("updates:support_bundle"))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/zip"
    assert 'attachment; filename="clms-support-' in answer["Content-Disposition"]
    files = _unzip(answer.content)
    assert {
        "summary.json",
        "runs.json",
        "checks.json",
        "backups.json",
        "audit.json",
        "settings.json",
        "containers.json",
        "project/compose.yaml",
        "project/.env",
    } <= set(files)
    everything = "".join(files.values())
    assert VENDOR_KEY not in everything
    assert SMTP_PASSWORD not in everything
    runs = json.loads(files["runs.json"])
    assert runs[0]["error_code"] == "health_check_failed"
    assert "[Filtered]" in runs[0]["log"] and "unhealthy" in runs[0]["log"]
    assert json.loads(files["settings.json"])["UPDATES_VENDOR_API_KEY"] == "[Filtered]"
    assert "CLMS_HTTP_PORT=8080" in files["project/.env"]
    assert "SMTP_PASSWORD=[Filtered]" in files["project/.env"]
    assert "did not answer" in files["containers.json"]  # said, not a crash
    summary = json.loads(files["summary.json"])
    assert summary["next_step"]["situation"]
    assert AuditEntry.objects.filter(action="updates.support_bundle").exists()


def test_a_viewer_cannot_take_the_bundle(client, school_viewer, school) -> None:
    client.force_login(school_viewer)
    assert client.post(reverse("updates:support_bundle")).status_code == 403
    assert not AuditEntry.objects.filter(action="updates.support_bundle").exists()


def test_the_command_writes_the_same_bundle(school, tmp_path) -> None:
    target = tmp_path / "bundle.zip"
    out = StringIO()
    call_command("support_bundle", "--output", str(target), stdout=out)
    assert f"Wrote {target}" in out.getvalue()
    files = _unzip(target.read_bytes())
    assert VENDOR_KEY not in "".join(files.values())
    assert "runs.json" in files
