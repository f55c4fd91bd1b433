"""The CLMS Updates agent as Docker images, built on this machine without Docker Hub.

The production image is the vendor's ``Dockerfile`` (``python:3.11-slim`` from
Docker Hub, which cannot be reached here). For the self-update tests and the
demo the agent needs real images anyway, so they are made from host files:

- a **base image**, ``docker import``ed from a root filesystem holding the
  Python that runs the project's virtualenv (its standard library and the
  runtime packages of ``requirements.txt`` with their dependencies, copied
  from the virtualenv), Debian's ``python3`` with ``docker-compose``, GnuPG,
  the PostgreSQL client tools, busybox as the shell, and every shared library
  these load (found with ``ldd``). It is cached in the engine by a fingerprint
  of what went in, like the demo stack's base image;
- **version images** ``FROM`` it: the project's code and the agent version
  (``CLMS_UPDATES_VERSION``); broken variants for the failure tests change
  one thing a real release could get wrong (a setting that keeps ``/healthz``
  red, a migration that fails).

``build_agent_images(client, registry)`` builds and pushes them all and
returns ``{tag: repository@sha256:…}``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import docker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
BASE_REPOSITORY = "clms-updates-base"
LOCAL_REPOSITORY = "clms-updates-agent"
VENV = "/opt/clms-updates/venv"
BASE_RECIPE = "agent-base-1"
CODE: tuple[str, ...] = (
    "manage.py",
    "requirements.txt",
    "clms_updates",
    "updates",
    "backups",
    "vendor_server",
    "templates",
    "static",
)
HOST_BINARIES = (
    "/usr/bin/gpg",
    "/usr/bin/gpg-agent",
    "/usr/bin/gpgconf",
    "/usr/bin/python3.11",
    "/usr/lib/postgresql/15/bin/pg_dump",
    "/usr/lib/postgresql/15/bin/pg_restore",
    "/usr/lib/postgresql/15/bin/psql",
)
HOST_TREES = (
    "/usr/lib/python3.11",
    "/usr/lib/python3/dist-packages",
    "/usr/share/zoneinfo",
    "/etc/ssl/certs",
)
# Parts of a standard library no agent process imports.
SKIPPED_STDLIB = {"test", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo"}


class AgentImageError(RuntimeError):
    """The agent image cannot be built here; says what is missing."""


@dataclass(frozen=True)
class AgentVersion:
    """One image of the agent: its tag, the version it reports, how it is broken."""

    tag: str
    version: str
    variant: str = "normal"  # normal, unhealthy, badmigration


VERSIONS = (
    AgentVersion("1.0.0", "1.0.0"),
    AgentVersion("1.1.0", "1.1.0"),
    # /healthz stays red: the release ships a compose command that is not there.
    AgentVersion("1.1.0-unhealthy", "1.1.0", "unhealthy"),
    # Its new migration fails half way.
    AgentVersion("1.1.0-badmigration", "1.1.0", "badmigration"),
)


# ---------------------------------------------------------------------------
# What goes into the base image
# ---------------------------------------------------------------------------


def _runtime_distributions() -> list[metadata.Distribution]:
    """The distributions ``requirements.txt`` needs, with their dependencies."""
    wanted: list[Requirement] = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            wanted.append(Requirement(line))
    found: dict[str, metadata.Distribution] = {}
    while wanted:
        requirement = wanted.pop()
        key = requirement.name.lower().replace("_", "-")
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise AgentImageError(
                f"{requirement.name} is not installed in the virtualenv; run `make venv`"
            ) from None
        extras = set(requirement.extras)
        if key in found and not extras:
            continue
        found[key] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            environment = {"extra": ""}
            needed = sub.marker is None or sub.marker.evaluate(environment)
            if not needed and extras:
                needed = any(
                    sub.marker.evaluate({"extra": extra})  # type: ignore[union-attr]
                    for extra in extras
                )
            if needed:
                wanted.append(sub)
    return list(found.values())


def _skipped(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def _tree(root: Path, *, stdlib: bool = False) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if stdlib and relative.parts and relative.parts[0] in SKIPPED_STDLIB:
            continue
        if path.is_file() and not _skipped(relative):
            yield path


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _libraries(elf_files: Iterable[Path]) -> set[Path]:
    """Every shared library the ELF files load (``ldd``), by the path they ask for."""
    found: set[Path] = set()
    for path in elf_files:
        result = subprocess.run(
            ["ldd", str(path)], capture_output=True, text=True, check=False
        )
        for line in result.stdout.splitlines():
            match = re.search(r"(/\S+) \(0x", line)
            if match:
                found.add(Path(match.group(1)))
    return found


def _in_image(path: Path) -> str:
    """Where a host path goes in the image (merged /usr: /lib -> /usr/lib)."""
    real_dir = Path(os.path.realpath(path.parent))
    return str(real_dir / path.name).lstrip("/")


def base_files() -> dict[str, Path]:
    """Path in the image -> host file, for everything the base image holds."""
    python = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    for needed in (*HOST_BINARIES, "/usr/bin/docker-compose", "/usr/bin/busybox"):
        if not Path(needed).exists():
            raise AgentImageError(
                f"{needed} is missing; `make system-deps-test` installs what the "
                "agent image is made of"
            )
    files: dict[str, Path] = {}
    files[_in_image(python)] = python
    for path in _tree(stdlib, stdlib=True):
        if "site-packages" not in path.relative_to(stdlib).parts:
            files[_in_image(path)] = path
    for shared in Path(sys.base_prefix, "lib").glob("libpython3*.so*"):
        files[_in_image(shared)] = shared
    site = f"{VENV}/lib/python3.11/site-packages"
    for dist in _runtime_distributions():
        for entry in dist.files or []:
            host = Path(str(dist.locate_file(entry)))
            # Console scripts live outside site-packages (../../bin); the image
            # runs modules (python -m celery) instead.
            if ".." in Path(str(entry)).parts:
                continue
            if host.is_file() and not _skipped(Path(str(entry))):
                files[f"{site.lstrip('/')}/{entry}"] = host
    for binary in HOST_BINARIES:
        files[_in_image(Path(binary))] = Path(binary)
    files["usr/bin/docker-compose"] = Path("/usr/bin/docker-compose")
    files["usr/bin/busybox"] = Path("/usr/bin/busybox")
    for tree in HOST_TREES:
        for path in _tree(Path(tree), stdlib=tree.endswith("python3.11")):
            files[_in_image(path)] = path
    elves = [host for host in files.values() if _is_elf(host)]
    for library in _libraries(elves):
        files.setdefault(_in_image(library), library)
    return files


def _fingerprint(files: dict[str, Path]) -> str:
    digest = hashlib.sha256(BASE_RECIPE.encode())
    digest.update(sys.version.encode())
    for name in sorted(files):
        stat = files[name].stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _add_text(
    archive: tarfile.TarFile, name: str, text: str, mode: int = 0o644
) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


def _add_link(archive: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    archive.addfile(info)


def _write_rootfs(path: Path, files: dict[str, Path]) -> None:
    python = _in_image(Path(os.path.realpath(sys.executable)))
    applets = subprocess.run(
        ["/usr/bin/busybox", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    made: set[str] = set()
    with tarfile.open(path, "w") as archive:

        def directory(name: str, mode: int = 0o755) -> None:
            parts = Path(name).parts
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in made:
                    made.add(sub)
                    info = tarfile.TarInfo(sub)
                    info.type = tarfile.DIRTYPE
                    info.mode = mode if i == len(parts) else 0o755
                    archive.addfile(info)

        for name in ("usr/bin", "usr/lib", "usr/lib64", "usr/sbin", "etc", "root"):
            directory(name)
        directory("tmp", 0o1777)
        directory("var/lib/clms-updates")
        for link, target in (
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/sbin"),
        ):
            _add_link(archive, link, target)
        for name in sorted(files):
            directory(str(Path(name).parent))
            archive.add(str(files[name].resolve()), arcname=name, recursive=False)
        for applet in applets:
            if f"usr/bin/{applet}" not in files and applet != "busybox":
                _add_link(archive, f"usr/bin/{applet}", "busybox")
        _add_link(archive, "usr/bin/python3", "python3.11")
        directory(f"{VENV.lstrip('/')}/bin")
        _add_link(archive, f"{VENV.lstrip('/')}/bin/python", f"/{python}")
        _add_link(archive, f"{VENV.lstrip('/')}/bin/python3", f"/{python}")
        _add_text(
            archive,
            f"{VENV.lstrip('/')}/pyvenv.cfg",
            f"home = /{Path(python).parent}\ninclude-system-site-packages = false\n",
        )
        _add_text(archive, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        _add_text(archive, "etc/group", "root:x:0:\n")
        _add_text(
            archive,
            "etc/nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files dns\n",
        )


def ensure_base_image(client: docker.DockerClient) -> str:
    """The base image's reference, imported from host files unless already present."""
    files = base_files()
    reference = f"{BASE_REPOSITORY}:{_fingerprint(files)}"
    try:
        client.images.get(reference)
        return reference
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="clms-agent-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _write_rootfs(rootfs, files)
        repository, tag = reference.split(":")
        client.api.import_image_from_file(
            str(rootfs),
            repository=repository,
            tag=tag,
            changes=[
                f"ENV PATH={VENV}/bin:/usr/bin:/bin",
                "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
                "ENV CLMS_PG_BINDIR=/usr/lib/postgresql/15/bin PGGSSENCMODE=disable",
                "ENV CLMS_COMPOSE_COMMAND=/usr/bin/docker-compose HOME=/root",
                "ENV CLMS_VAR_DIR=/var/lib/clms-updates",
                "WORKDIR /app",
            ],
        )
    return reference


# ---------------------------------------------------------------------------
# Version images
# ---------------------------------------------------------------------------

BROKEN_MIGRATION = '''"""A migration that fails half way (the agent image's broken variant)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("updates", "{latest}")]
    operations = [
        migrations.RunSQL("CREATE TABLE updates_selfupdate_probe (id integer)"),
        migrations.RunSQL("SELECT 1 / 0"),
    ]
'''


def _latest_migration() -> str:
    names = sorted(p.stem for p in (ROOT / "updates" / "migrations").glob("[0-9]*.py"))
    return names[-1]


def _context(base: str, version: AgentVersion) -> io.BytesIO:
    buffer = io.BytesIO()
    env = [f"CLMS_UPDATES_VERSION={version.version}"]
    if version.variant == "unhealthy":
        env.append("CLMS_COMPOSE_COMMAND=/usr/bin/no-such-compose")
    dockerfile = "\n".join(
        [
            f"FROM {base}",
            "COPY app/ /app/",
            "ENV " + " ".join(env),
            f'LABEL org.opencontainers.image.version="{version.version}" '
            f'org.clms-updates.variant="{version.variant}"',
            'CMD ["python", "manage.py", "check"]',
            "",
        ]
    )
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        _add_text(archive, "Dockerfile", dockerfile)
        for name in CODE:
            archive.add(
                str(ROOT / name),
                arcname=f"app/{name}",
                filter=lambda info: (
                    None
                    if "__pycache__" in info.name or info.name.endswith(".pyc")
                    else info
                ),
            )
        if version.variant == "badmigration":
            latest = _latest_migration()
            number = int(latest.split("_", 1)[0]) + 1
            _add_text(
                archive,
                f"app/updates/migrations/{number:04d}_selfupdate_probe.py",
                BROKEN_MIGRATION.format(latest=latest),
            )
    buffer.seek(0)
    return buffer


def build_agent_images(client: docker.DockerClient, registry: str) -> dict[str, str]:
    """Build every agent version and push it to ``registry``; tag -> digest reference."""
    base = ensure_base_image(client)
    references = {}
    for version in VERSIONS:
        local = f"{LOCAL_REPOSITORY}:{version.tag}"
        client.images.build(
            fileobj=_context(base, version), custom_context=True, tag=local, rm=True
        )
        repository = f"{registry}/clms/updates-agent"
        client.images.get(local).tag(repository, tag=version.tag)
        digest = ""
        for event in client.api.push(
            repository, tag=version.tag, stream=True, decode=True
        ):
            if "error" in event:
                raise AgentImageError(f"pushing {version.tag}: {event['error']}")
            digest = (event.get("aux") or {}).get("Digest", digest)
        references[version.tag] = f"{repository}@{digest}"
    return references


# ---------------------------------------------------------------------------
# The agent's own compose project
# ---------------------------------------------------------------------------

# The settings the agent's services read (each a ${VARIABLE} of the project).
AGENT_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DOCKER_HOST",
    "DOCKER_SOCKET",
    "AGENT_ROOT",
    "AGENT_PROJECT_DIR",
    "AGENT_COMPOSE_PROJECT",
    "CLMS_UPDATES_HTTP_PORT",
    "BACKUP_DIR",
    "UPDATES_GNUPG_HOME",
    "UPDATES_VENDOR_URL",
    "UPDATES_VENDOR_API_KEY",
    "UPDATES_VENDOR_KEY_FINGERPRINTS",
    "UPDATES_VENDOR_PUBLIC_KEY_FILE",
    "AGENT_HEALTH_TIMEOUT_SECONDS",
    "UPDATES_RUN_LEASE_SECONDS",
    # "true" where no TLS proxy is in front (the tests: plain HTTP on loopback).
    "DEBUG",
)
SECRET_SETTINGS = {"DATABASE_URL", "SECRET_KEY", "UPDATES_VENDOR_API_KEY"}


def compose_file(image_ref: str) -> str:
    """The vendor's compose file of an agent release running ``image_ref``.

    Web, worker and beat share the host's network (the test's PostgreSQL,
    Redis and vendor listen on loopback); the Docker socket and the agent's
    folder (``AGENT_ROOT``: project, data, backups, GnuPG home) are mounted at
    the same paths, so compose run inside sees the same files as outside.
    """
    import yaml

    environment = {name: f"${{{name}}}" for name in AGENT_SETTINGS}
    environment.update({"CLMS_ROLE": "school"})
    common = {
        "image": image_ref,
        "network_mode": "host",
        "restart": "unless-stopped",
        "environment": environment,
        "volumes": [
            "${DOCKER_SOCKET}:${DOCKER_SOCKET}",
            "${AGENT_ROOT}:${AGENT_ROOT}",
        ],
    }
    document = {
        "x-clms-settings": {
            name: {
                "description": f"{name} of the agent",
                "required": True,
                "secret": name in SECRET_SETTINGS,
            }
            for name in AGENT_SETTINGS
        },
        "x-clms-health": {"path": "/healthz", "expected_status": 200},
        "services": {
            "web": {
                **common,
                "command": [
                    "sh",
                    "-c",
                    "python manage.py migrate --noinput && exec python -m daphne "
                    '-b 127.0.0.1 -p "$$CLMS_UPDATES_HTTP_PORT" '
                    "clms_updates.asgi:application",
                ],
            },
            "worker": {
                **common,
                "command": [
                    "sh",
                    "-c",
                    "exec python -m celery -A clms_updates worker -l info -n "
                    '"$${CLMS_WORKER_NAME:-worker}@%h" -Q "$${CLMS_WORKER_QUEUES:-celery}" '
                    "--concurrency 2",
                ],
            },
            "beat": {
                **common,
                "command": [
                    "python",
                    "-m",
                    "celery",
                    "-A",
                    "clms_updates",
                    "beat",
                    "-l",
                    "info",
                    "--pidfile=",
                    "--scheduler",
                    "django_celery_beat.schedulers:DatabaseScheduler",
                ],
            },
        },
    }
    return yaml.safe_dump(document, sort_keys=False)
