"""docker-compose.yml is valid to a real compose parser (images cannot be pulled here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compose_config(
    tmp_path: Path, env: str, *, source: Path = ROOT / "docker-compose.yml"
) -> subprocess.CompletedProcess[str]:
    """``compose config`` on a copy of ``source`` (and the files beside it)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed; `make system-deps-test` installs it"
        )
    if source.parent != ROOT:
        shutil.copytree(source.parent, tmp_path, dirs_exist_ok=True)
    (tmp_path / ".env").write_text(env)
    shutil.copy(source, tmp_path / source.name)
    return subprocess.run(
        [
            binary,
            "--project-directory",
            str(tmp_path),
            "-f",
            str(tmp_path / source.name),
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


VENDOR = ROOT / "deploy" / "vendor" / "compose.yaml"
VENDOR_ENV = (
    "VENDOR_DOMAIN=updates.vendor.example\nCADDY_TLS=ops@vendor.example\n"
    "POSTGRES_PASSWORD=secret\nSECRET_KEY=" + "s" * 60 + "\n"
)


def test_the_vendor_deployment_is_valid_with_tls_registry_and_health_checks(
    tmp_path: Path,
) -> None:
    import yaml

    result = compose_config(tmp_path, VENDOR_ENV, source=VENDOR)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {
        "proxy", "web", "worker", "beat", "registry", "redis", "postgres"
    }  # fmt: skip
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
    published = {str(p.get("published", p)) if isinstance(p, dict) else str(p)
                 for p in services["proxy"]["ports"]}  # fmt: skip
    assert any("443" in p for p in published) and any("80" in p for p in published)
    # Only the proxy is reachable from outside; the app and registry are behind it.
    assert "ports" not in services["web"] and "ports" not in services["registry"]
    registry = services["registry"]["environment"]
    assert registry["REGISTRY_AUTH"] == "htpasswd"
    assert "registry-data:/var/lib/registry" in str(services["registry"]["volumes"])
    assert services["web"]["environment"]["CLMS_ROLE"] == "vendor"
    assert services["web"]["environment"]["DEBUG"] == "false"
    caddyfile = (VENDOR.parent / "Caddyfile").read_text()
    assert (
        "reverse_proxy registry:5000" in caddyfile and "tls {$CADDY_TLS}" in caddyfile
    )


@pytest.mark.parametrize("missing", ["VENDOR_DOMAIN", "CADDY_TLS", "POSTGRES_PASSWORD"])
def test_the_vendor_deployment_says_which_setting_is_missing(
    tmp_path: Path, missing: str
) -> None:
    env = "".join(
        line + "\n" for line in VENDOR_ENV.splitlines() if not line.startswith(missing)
    )
    result = compose_config(tmp_path, env, source=VENDOR)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr
