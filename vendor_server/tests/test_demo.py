"""``seed_vendor_demo`` gives the demo agent everything it needs, and is idempotent."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from vendor_server import keys
from vendor_server.models import School

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_seed_vendor_demo_writes_the_agent_env_and_can_run_twice(
    gnupg_home: Path, settings, tmp_path: Path
) -> None:
    settings.VENDOR_GNUPG_HOME = gnupg_home
    settings.VENDOR_SIGNING_KEY = ""
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("seed_vendor_demo", stdout=out)
    call_command("seed_vendor_demo", stdout=out)
    [fingerprint] = keys.secret_fingerprints()
    env = dict(
        line.split("=", 1) for line in (tmp_path / "demo-agent.env").read_text().split()
    )
    assert env["UPDATES_VENDOR_URL"] == "http://127.0.0.1:8000"
    assert env["UPDATES_VENDOR_KEY_FINGERPRINTS"] == fingerprint
    assert (
        "BEGIN PGP PUBLIC KEY"
        in Path(env["UPDATES_VENDOR_PUBLIC_KEY_FILE"]).read_text()
    )
    assert env["UPDATES_VENDOR_API_KEY"] in out.getvalue()
    assert School.objects.count() == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {env['UPDATES_VENDOR_API_KEY']}")
    assert client.get("/vendor/api/v1/index").status_code == 200
