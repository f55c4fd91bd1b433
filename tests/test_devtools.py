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
