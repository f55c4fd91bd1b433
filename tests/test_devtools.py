"""The dev tooling: tests touch only services they started, and leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools import services

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.services
def test_pytest_outside_make_test_leaves_a_running_redis_alone(tmp_path: Path) -> None:
    """A demo's Redis at REDIS_URL keeps its keys when someone runs plain pytest."""
    redis_service = services.start_redis(tmp_path / "redis")
    try:
        import redis

        url = redis_service.env["REDIS_URL"]
        client = redis.Redis.from_url(url)
        client.set("demo:keep-me", "1")
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CLMS_REQUIRE_SERVICES", "DATABASE_URL")
        }
        env["REDIS_URL"] = url
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/test_accounts.py",
                "-k",
                "audit_record",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert client.get("demo:keep-me") == b"1"
        assert client.dbsize() == 1
    finally:
        redis_service.stop()


@pytest.mark.services
@pytest.mark.docker
def test_a_stopped_private_engine_leaves_no_folder_behind(docker_host: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="clms-t-", dir="/tmp"))
    service = services.start_dockerd(root / "dockerd")
    service.stop()
    mounted = [
        p for p in Path("/proc/self/mounts").read_text().split() if str(root) in p
    ]
    services.remove_tree(root)
    assert not root.exists(), f"left behind (mounts were {mounted})"


@pytest.mark.services
def test_a_private_engine_starts_where_tmp_is_on_overlayfs() -> None:
    """Inside a container /tmp is overlayfs, where overlay2 cannot stack: the
    engine falls back to vfs and still runs."""
    root = Path(tempfile.mkdtemp(prefix="clms-t-", dir="/tmp"))
    for part in ("lower", "upper", "work", "merged"):
        (root / part).mkdir()
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={root / 'lower'},upperdir={root / 'upper'},workdir={root / 'work'}",
            str(root / "merged"),
        ],
        check=True,
    )
    try:
        assert services.filesystem_type(root / "merged") == "overlay"
        assert services.storage_driver(root / "merged" / "dockerd") == "vfs"
        assert (
            services.storage_driver(root) != "vfs"
            or services.filesystem_type(root) == "overlay"
        )
        service = services.start_dockerd(root / "merged" / "dockerd")
        try:
            import docker

            client = docker.DockerClient(base_url=service.env["DOCKER_HOST"])
            assert client.info()["Driver"] == "vfs"
            client.close()
        finally:
            service.stop()
    finally:
        subprocess.run(["umount", "-l", str(root / "merged")], check=False)
        services.remove_tree(root)


def test_stopping_the_demo_stops_the_gpg_agents_it_started(
    gnupg_home: Path, monkeypatch
) -> None:
    from devtools import demo

    subprocess.run(
        ["gpg-connect-agent", "--homedir", str(gnupg_home), "/bye"],
        capture_output=True,
        check=True,
    )

    def agents() -> list[str]:
        found = subprocess.run(
            ["pgrep", "-af", "gpg-agent"], capture_output=True, text=True
        ).stdout
        return [line for line in found.splitlines() if str(gnupg_home) in line]

    assert agents(), "the test could not start an agent"
    monkeypatch.setenv("VENDOR_GNUPG_HOME", str(gnupg_home))
    monkeypatch.setenv("UPDATES_GNUPG_HOME", str(gnupg_home))
    demo._stop_gpg_agents()
    assert not agents()
