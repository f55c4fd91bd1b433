"""docker-compose.yml is valid to a real compose parser (images cannot be pulled here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compose_config(tmp_path: Path, env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed; `make system-deps-test` installs it"
        )
    (tmp_path / ".env").write_text(env)
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    return subprocess.run(
        [
            binary,
            "--project-directory",
            str(tmp_path),
            "-f",
            str(tmp_path / "docker-compose.yml"),
            "config",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )


def test_compose_file_is_valid_and_complete(tmp_path: Path) -> None:
    import yaml

    result = compose_config(
        tmp_path, "POSTGRES_PASSWORD=secret\nSECRET_KEY=" + "s" * 60 + "\n"
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"web", "worker", "beat", "redis", "postgres"}
    for name in ("web", "worker", "beat"):
        assert "/var/run/docker.sock:/var/run/docker.sock" in str(
            services[name]["volumes"]
        )
    for name in ("web", "worker", "redis", "postgres"):
        assert "healthcheck" in services[name], name
    assert set(config["volumes"]) == {"agent-data", "redis-data", "postgres-data"}


def test_compose_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    result = compose_config(tmp_path, "SECRET_KEY=" + "s" * 60 + "\n")
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr
