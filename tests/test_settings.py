"""Settings fail loudly and clearly on bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with ``env`` on top of ours."""
    clean = {k: v for k, v in os.environ.items() if k not in env}
    return subprocess.run(
        [sys.executable, "-c", "import clms_updates.settings as s; print(s.CLMS_ROLE)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_default_role_is_both() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CLMS_ROLE"}
    result = subprocess.run(
        [sys.executable, "-c", "import clms_updates.settings as s; print(s.CLMS_ROLE)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "both"


def test_bad_role_names_the_variable_and_the_choices() -> None:
    result = load_settings(CLMS_ROLE="teacher")
    assert result.returncode != 0
    assert (
        "CLMS_ROLE='teacher' is not allowed; use one of: school, vendor, both."
        in result.stderr
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("EMAIL_PORT", "twenty-five", "EMAIL_PORT='twenty-five' is not a whole number"),
        ("HEALTHZ_TIMEOUT", "0", "HEALTHZ_TIMEOUT=0 is below the minimum 1"),
        ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL='nosuchdb://x' is not valid"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' is not allowed"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(
    name: str, value: str, expected: str
) -> None:
    result = load_settings(**{name: value})
    assert result.returncode != 0
    assert expected in result.stderr


def test_production_refuses_the_demo_secret_key() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "SECRET_KEY_FILE")
    }
    result = subprocess.run(
        [sys.executable, "-c", "import clms_updates.settings"],
        cwd=ROOT,
        env={**env, "DEBUG": "false"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is the demo key while DEBUG=false" in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x" * 60 + "\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import clms_updates.settings as s; print(s.SECRET_KEY)",
        ],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY_FILE": str(secret)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "x" * 60


def test_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "Zq8#vR2!mT5@wX9$" + "p" * 20,
        "ALLOWED_HOSTS": "updates.school.example",
        "CLMS_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("role", "mounted", "absent"),
    [
        ("school", "/api/updates/", "/vendor/api/v1/"),
        ("vendor", "/vendor/api/v1/", "/api/updates/"),
    ],
)
def test_role_decides_which_urls_are_mounted(
    role: str, mounted: str, absent: str
) -> None:
    code = (
        "import django; django.setup();"
        "from django.urls import get_resolver;"
        "print('\\n'.join(str(p.pattern) for p in get_resolver().url_patterns))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "CLMS_ROLE": role,
            "DJANGO_SETTINGS_MODULE": "clms_updates.settings",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    patterns = result.stdout.split()
    assert mounted.lstrip("/") in patterns
    assert absent.lstrip("/") not in patterns
