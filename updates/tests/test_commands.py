"""Management commands: check_updates, apply_update, create_api_token, seed_school_demo."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from updates.models import MaintenanceWindow, UpdateRun
from updates.tests.factories import make_manifest, make_release

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_check_updates_prints_the_verified_release(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")], sequence=4)
    output = run("check_updates")
    assert "Verified release available: CLMS 1.1.0" in output
    assert "index sequence 4" in output


def test_check_updates_exits_non_zero_with_the_refusal_reason(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    text, signature = vendor.index
    vendor.index = (text.replace('"sequence":1', '"sequence":2'), signature)
    with pytest.raises(CommandError, match="refused: vendor: index") as error:
        run("check_updates")
    assert error.value.returncode == 1


def test_check_updates_exits_2_when_offline(vendor, settings) -> None:
    settings.UPDATES_VENDOR_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match="offline") as error:
        run("check_updates")
    assert error.value.returncode == 2


def test_apply_update_refuses_an_unverified_version() -> None:
    with pytest.raises(CommandError, match="not a verified available release"):
        run("apply_update", "7.0.0")


def test_apply_update_runs_the_pipeline_and_reports_its_failure() -> None:
    make_release("1.1.0")
    with pytest.raises(CommandError, match="verification_failed"):
        run("apply_update", "1.1.0")
    run_row = UpdateRun.objects.get()
    assert run_row.state == UpdateRun.State.FAILED and run_row.forced


def test_create_api_token_prints_a_working_token(school_admin) -> None:
    key = run("create_api_token", school_admin.username).strip()
    assert Token.objects.get(user=school_admin).key == key
    assert run("create_api_token", school_admin.username).strip() == key
    renewed = run("create_api_token", school_admin.username, "--renew").strip()
    assert renewed != key


def test_create_api_token_for_a_missing_user_says_what_to_do() -> None:
    with pytest.raises(CommandError, match="create it first"):
        run("create_api_token", "nobody")


def test_seed_school_demo_adds_the_weeknight_window_once() -> None:
    run("seed_school_demo")
    run("seed_school_demo")
    window = MaintenanceWindow.objects.get()
    assert window.weekdays == [0, 1, 2, 3, 4]
    assert (window.start.hour, window.end.hour) == (22, 5)
