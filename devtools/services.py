"""Start the real services the tests and the demo need, on loopback, in a folder.

``make test`` runs ``python -m devtools.services test -- pytest …``: it
starts Redis, PostgreSQL, a Docker engine and a Docker registry in a temporary
directory, exports where they listen, runs the command, and stops them all,
whatever the command's outcome. ``make run`` uses the same functions with a
folder under ``var/`` so that data survives a restart.

Each ``start_*`` waits until its service answers and returns a ``Service`` whose
``stop()`` ends it. Nothing here is used by the running product.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A service could not be started; the message says which and why."""


@dataclass
class Service:
    """A started service and how to reach it."""

    name: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    stop_command: list[str] | None = None
    log: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.stop_command:
            subprocess.run(
                self.stop_command, capture_output=True, timeout=60, check=False
            )
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def unmount_below(root: Path) -> list[str]:
    """Unmount whatever a stopped service left mounted under ``root`` (deepest first).

    dockerd bind-mounts network namespaces under its exec root (``netns/default``)
    and leaves them when it stops; the folder cannot be removed until they go.
    """
    prefix = str(root.resolve()) + "/"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = sorted(
        {
            line.split()[1].replace("\\040", " ")
            for line in lines
            if len(line.split()) > 1 and line.split()[1].startswith(prefix)
        },
        key=len,
        reverse=True,
    )
    for point in points:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return points


def remove_tree(root: Path) -> None:
    """Remove a services folder, mounts included; say so if anything stays behind."""
    unmount_below(root)
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        print(f"[services] could not remove {root} entirely", file=sys.stderr)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, what: str, timeout: float, log: Path | None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ServiceError(f"{what} did not become ready within {timeout:.0f}s.\n{tail}")


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if not path:
        raise ServiceError(
            f"{binary} is not installed; install the Debian package {package} "
            f"(`make system-deps` does it)."
        )
    return path


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------


def start_redis(root: Path, port: int | None = None) -> Service:
    """A Redis server on 127.0.0.1 keeping its files in ``root``."""
    binary = need("redis-server", "redis-server")
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = root / "redis.log"
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    wait_until(lambda: port_open(port), what="Redis", timeout=20, log=log)
    url = f"redis://127.0.0.1:{port}/0"
    return Service("redis", {"REDIS_URL": url}, process=process, log=log)


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """The newest PostgreSQL server binaries installed by Debian's packages."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not candidates:
        raise ServiceError(
            "PostgreSQL is not installed; install the Debian package postgresql."
        )
    return Path(candidates[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root; Debian's package creates the postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def start_postgres(root: Path, port: int | None = None) -> Service:
    """A PostgreSQL server on 127.0.0.1 with trust auth for user ``postgres``."""
    bindir = postgres_bindir()
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    data = root / "pgdata"
    log = root / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o755)  # noqa: S103 - postgres must traverse it
        if log.exists():
            shutil.chown(log, "postgres")
    if not (data / "PG_VERSION").exists():
        result = subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed: {result.stderr.strip()}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    result = subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise ServiceError(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return Service(
        "postgres",
        {"CLMS_TEST_PG_URL": url, "CLMS_PG_BINDIR": str(bindir)},
        stop_command=_as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        ),
        log=log,
    )


# ---------------------------------------------------------------------------
# Docker engine and registry
# ---------------------------------------------------------------------------


def filesystem_type(path: Path) -> str:
    """The type of the filesystem ``path`` is on (``ext4``, ``overlay``, ``tmpfs``…)."""
    best, kind = "", ""
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            fs_type = fields[fields.index("-") + 1]
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fs_type
    return kind


def storage_driver(root: Path) -> str:
    """overlay2, unless ``root`` is itself on overlayfs (inside a container),
    where overlay2 cannot work and the slower vfs does; or
    ``CLMS_DOCKERD_STORAGE_DRIVER``."""
    chosen = os.environ.get("CLMS_DOCKERD_STORAGE_DRIVER", "")
    if chosen:
        return chosen
    return "vfs" if filesystem_type(root) in ("overlay", "overlayfs") else "overlay2"


def start_dockerd(root: Path) -> Service:
    """A Docker engine with its own data, exec root and socket under ``root``.

    No default bridge and no iptables rules, so several engines (parallel test
    runs, the demo) can share one machine; containers use host networking.
    """
    binary = need("dockerd", "docker.io")
    if os.geteuid() != 0:
        raise ServiceError(
            "dockerd needs root; run as root or set DOCKER_HOST to a running engine."
        )
    root.mkdir(parents=True, exist_ok=True)
    sock = root / "docker.sock"
    log = root / "dockerd.log"
    process = subprocess.Popen(
        [
            binary,
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            "-H",
            f"unix://{sock}",
            f"--pidfile={root / 'dockerd.pid'}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--mtu=1400",
            f"--storage-driver={storage_driver(root)}",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise ServiceError(
                "dockerd exited:\n" + log.read_text(errors="replace")[-2000:]
            )
        import docker

        client = docker.DockerClient(base_url=f"unix://{sock}", timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()

    wait_until(ready, what="dockerd", timeout=60, log=log)
    return Service(
        "dockerd", {"DOCKER_HOST": f"unix://{sock}"}, process=process, log=log
    )


def start_registry(
    root: Path, port: int | None = None, htpasswd: Path | None = None
) -> Service:
    """Debian's docker-registry on 127.0.0.1, optionally behind htpasswd auth."""
    binary = need("docker-registry", "docker-registry")
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "registry.yml"
    auth = ""
    if htpasswd:
        auth = f"auth:\n  htpasswd:\n    realm: clms\n    path: {htpasswd}\n"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = root / "registry.log"
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )

    def ready() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        except urllib.error.HTTPError as e:
            return e.code == 401  # up, asking for credentials
        return True

    wait_until(ready, what="docker-registry", timeout=30, log=log)
    return Service(
        "registry",
        {"CLMS_TEST_REGISTRY": f"127.0.0.1:{port}"},
        process=process,
        log=log,
    )


# ---------------------------------------------------------------------------
# The test wrapper
# ---------------------------------------------------------------------------

STARTERS: dict[str, Callable[[Path], Service]] = {
    "redis": start_redis,
    "postgres": start_postgres,
    "dockerd": start_dockerd,
    "registry": start_registry,
}


def for_bench(work: Path) -> list[Service] | None:
    """PostgreSQL (database ``bench``) and Redis for a benchmark, unless the
    environment names them (DATABASE_URL, REDIS_URL); sets both and CACHE_URL.

    None (after saying why) when one cannot start here: the benchmark exits.
    """
    started: list[Service] = []
    try:
        if "DATABASE_URL" not in os.environ:
            postgres = start_postgres(work / "postgres")
            started.append(postgres)
            import psycopg

            admin = postgres.env["CLMS_TEST_PG_URL"]
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute("CREATE DATABASE bench")
            os.environ["DATABASE_URL"] = admin.rsplit("/", 1)[0] + "/bench"
        if "REDIS_URL" not in os.environ:
            redis_service = start_redis(work / "redis")
            started.append(redis_service)
            os.environ["REDIS_URL"] = redis_service.env["REDIS_URL"]
    except ServiceError as e:
        for service in started:
            service.stop()
        print(f"cannot run: {e}")
        return None
    os.environ["CACHE_URL"] = os.environ["REDIS_URL"]
    return started


@contextlib.contextmanager
def running(names: list[str], root: Path) -> Iterator[dict[str, str]]:
    """Start ``names`` under ``root``; yield their environment; stop them all."""
    started: list[Service] = []
    env: dict[str, str] = {}
    try:
        for name in names:
            t0 = time.monotonic()
            service = STARTERS[name](root / name)
            started.append(service)
            env.update(service.env)
            print(
                f"[services] {name} ready in {time.monotonic() - t0:.1f}s: "
                + ", ".join(f"{k}={v}" for k, v in service.env.items()),
                flush=True,
            )
        yield env
    finally:
        for service in reversed(started):
            with contextlib.suppress(Exception):
                service.stop()


def main(argv: list[str]) -> int:
    """``test [--keep] [--services a,b] -- COMMAND…``: run COMMAND with services up."""
    if not argv or argv[0] != "test" or "--" not in argv:
        print(
            "usage: python -m devtools.services test [--services redis,postgres,dockerd,registry] -- COMMAND…",
            file=sys.stderr,
        )
        return 2
    split = argv.index("--")
    options, command = argv[1:split], argv[split + 1 :]
    names = list(STARTERS)
    if "--services" in options:
        names = [n for n in options[options.index("--services") + 1].split(",") if n]
    root = Path(tempfile.mkdtemp(prefix="clms-services-"))
    os.chmod(root, 0o755)  # noqa: S103 - service users must traverse it
    try:
        with running(names, root) as env:
            child_env = {
                **os.environ,
                **env,
                "CLMS_REQUIRE_SERVICES": ",".join(names),
                "CLMS_SERVICES_ROOT": str(root),
            }
            child_env["DATABASE_URL"] = env.get(
                "CLMS_TEST_PG_URL", child_env.get("DATABASE_URL", "")
            )
            if not child_env["DATABASE_URL"]:
                del child_env["DATABASE_URL"]
            process = subprocess.Popen(command, env=child_env)
            try:
                return process.wait()
            except KeyboardInterrupt:
                process.send_signal(signal.SIGINT)
                return process.wait()
    except ServiceError as e:
        print(f"[services] {e}", file=sys.stderr)
        return 3
    finally:
        remove_tree(root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
