"""``make run``: the whole product on embedded defaults, in the foreground.

Starts Redis (and, as root, a Docker engine) under ``var/``, migrates, seeds the
demo, then runs the web server, a Celery worker and beat together with their
logs prefixed. Ctrl-C stops all of them. Running it again reuses ``var/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from devtools import demo_clms
from devtools import services as localservices

BASE_DIR = Path(__file__).resolve().parent.parent


def _say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def _pump(name: str, stream: object) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:>6} | {raw.decode(errors='replace')}")
        sys.stdout.flush()


def _redis_port() -> int:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    host_port = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return int(host_port.rsplit(":", 1)[1]) if ":" in host_port else 6379


def start_backing_services(var: Path) -> list[localservices.Service]:
    """Redis on loopback and, where we may, a Docker engine, both under ``var``."""
    started = []
    port = _redis_port()
    if localservices.port_open(port):
        _say(f"Redis already answers on 127.0.0.1:{port}; using it.")
    else:
        started.append(localservices.start_redis(var / "redis", port))
        _say(f"Redis started on 127.0.0.1:{port} (files in var/redis).")
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:{port}/0")

    if "DOCKER_HOST" in os.environ:
        _say(f"Using the Docker engine at DOCKER_HOST={os.environ['DOCKER_HOST']}.")
    elif os.geteuid() == 0 and shutil.which("dockerd"):
        # A private engine keeps the demo away from any engine the machine runs.
        # It lives in the temp dir: its socket path must stay short.
        root = Path(tempfile.gettempdir()) / f"clms-demo-docker-{os.getuid()}"
        try:
            service = localservices.start_dockerd(root)
        except localservices.ServiceError as e:
            _say(
                f"Could not start a Docker engine ({e}); /healthz will show docker down."
            )
        else:
            started.append(service)
            os.environ.update(service.env)
            _say(f"Docker engine started: DOCKER_HOST={service.env['DOCKER_HOST']}.")
    else:
        _say(
            "No Docker engine: set DOCKER_HOST or run as root with docker.io installed."
        )
    return started


def start_demo_installation(
    var: Path, services: list[localservices.Service]
) -> list[demo_clms.DemoRelease]:
    """The demo CLMS stack the agent updates; nothing when no Docker engine runs."""
    if "DOCKER_HOST" not in os.environ:
        _say("Without a Docker engine there is no demo CLMS stack to update.")
        return []
    try:
        demo_services, env, release_files = demo_clms.start(var)
    except Exception as e:  # the rest of the demo still runs without the stack
        _say(f"Could not start the demo CLMS stack ({e}); updates cannot be applied.")
        return []
    services.extend(demo_services)
    os.environ.update({k: v for k, v in env.items() if v})
    return release_files


def publish_demo_releases(release_files: list[demo_clms.DemoRelease]) -> None:
    """Publish the demo releases on the vendor side (once; later runs skip them).

    The failure demo's are held back: vendor staff enable one in the admin.
    """
    for release in release_files:
        held_back = ["--held-back"] if release.held_back else []
        result = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "publish_release",
                "--manifest",
                str(release.path),
                *held_back,
            ],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            _say(result.stdout.strip())
        elif "already published" not in result.stderr:
            _say(f"Publishing {release.path.name} failed:\n{result.stderr.strip()}")


def _first_check(port: int) -> None:
    """Once the web server answers, check for updates so the manager shows them."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not localservices.port_open(port):
        time.sleep(0.5)
    result = subprocess.run(
        [sys.executable, "manage.py", "check_updates"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    _say("First update check: " + (result.stdout or result.stderr).strip())


def _stop_gpg_agents() -> None:
    """GnuPG starts an agent per home on first use and leaves it running; stop
    the demo's (vendor signing key, agent keyring) with the rest."""
    for variable, default in (
        ("VENDOR_GNUPG_HOME", "vendor-gnupg"),
        ("UPDATES_GNUPG_HOME", "agent-gnupg"),
    ):
        home = os.environ.get(variable) or str(
            Path(os.environ.get("CLMS_VAR_DIR", BASE_DIR / "var")) / default
        )
        if Path(home).is_dir():
            subprocess.run(
                ["gpgconf", "--homedir", home, "--kill", "all"],
                capture_output=True,
                check=False,
            )


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (a supervisor, ``timeout``, ``kill``) stops everything like Ctrl-C."""
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    os.chdir(BASE_DIR)
    var = Path(os.environ.get("CLMS_VAR_DIR", BASE_DIR / "var"))
    var.mkdir(parents=True, exist_ok=True)
    bind = os.environ.get("CLMS_BIND", "127.0.0.1:8000")
    host, port = bind.rsplit(":", 1)

    services = start_backing_services(var)
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        release_files = start_demo_installation(var, services)
        _say("Applying database migrations…")
        manage("migrate", "--noinput", "-v", "0")
        manage("seed_demo")
        os.environ.update(demo_clms.load_env_file(var / "demo-agent.env"))
        publish_demo_releases(release_files)
        commands = {
            "web": [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                port,
                "clms_updates.asgi:application",
            ],
            "worker": [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "clms_updates",
                "worker",
                "-l",
                "info",
                "--concurrency",
                "2",
                "-n",
                "demo@%h",
            ],
            "beat": [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "clms_updates",
                "beat",
                "-l",
                "info",
                "--pidfile=",
            ],
        }
        for name, command in commands.items():
            process = subprocess.Popen(
                command,
                cwd=BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            children[name] = process
            threading.Thread(
                target=_pump, args=(name, process.stdout), daemon=True
            ).start()
        _say(
            f"CLMS Updates is starting at http://{host}:{port}/ (log in as admin; "
            f"health at /healthz; the vendor admin at /admin/). "
        )
        if release_files:
            _say(f"The demo CLMS app answers at {os.environ['CLMS_APP_URL']}/health.")
            threading.Thread(
                target=_first_check, args=(int(port),), daemon=True
            ).start()
        _say("Ctrl-C stops everything.")
        while True:
            for name, process in children.items():
                if process.poll() is not None:
                    _say(
                        f"{name} exited with code {process.returncode}; stopping the rest."
                    )
                    return process.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        _say("Stopping…")
        return 0
    except subprocess.CalledProcessError as e:
        _say(
            f"Set-up step failed: {' '.join(map(str, e.cmd))} exited with {e.returncode}."
        )
        return 1
    finally:
        for process in children.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in children.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _stop_gpg_agents()
        for service in reversed(services):
            service.stop()
        _say("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
