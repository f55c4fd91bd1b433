"""Build the demo CLMS images offline and push them to a registry.

No Docker Hub: a base root filesystem is assembled from files already on this
machine (Debian's static busybox, the PostgreSQL 15 ``psql`` client and ``curl``
with the shared libraries ``ldd`` names) and imported as an image. Each demo
version is then a small build ``FROM`` that base adding only the app scripts,
its migrations and two marker files, so all builds together take seconds.

Everything is cached by content: the base image is tagged with a hash of the
files it holds, each version image carries a label with a hash of its build
context, and a matching image already in the engine is reused as it is.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.images import Image

APP_DIR = Path(__file__).resolve().parent / "app"
REPOSITORY = "clms/app"
BASE_REPOSITORY = "clms-demo/base"
LOCAL_REPOSITORY = "clms-demo/app"
CONTEXT_LABEL = "org.clms.demo.context"
BUSYBOX = Path("/bin/busybox")
PSQL = Path("/usr/lib/postgresql/15/bin/psql")
CURL = Path("/usr/bin/curl")
# Bumped when the way the root filesystem is assembled changes.
BASE_RECIPE = "2"


class DemoBuildError(RuntimeError):
    """The demo images could not be built; the message says what is missing."""


@dataclass(frozen=True)
class DemoVersion:
    """One demo image: the version it reports, how it misbehaves, its migrations."""

    tag: str
    version: str
    variant: str
    migrations: tuple[str, ...]


_MIGRATIONS = sorted(p.name for p in (APP_DIR / "migrations").glob("*.sql"))
VERSIONS: dict[str, DemoVersion] = {
    v.tag: v
    for v in (
        DemoVersion("1.0.0", "1.0.0", "normal", tuple(_MIGRATIONS[:1])),
        DemoVersion("1.0.1", "1.0.1", "normal", tuple(_MIGRATIONS[:2])),
        DemoVersion("1.0.2", "1.0.2", "normal", tuple(_MIGRATIONS[:3])),
        # Health never passes although the migration succeeds.
        DemoVersion("1.1.0-unhealthy", "1.1.0", "unhealthy", tuple(_MIGRATIONS[:4])),
        # The second of its two new migrations fails: a half-migrated database.
        DemoVersion(
            "1.1.0-badmigration", "1.1.0", "badmigration", tuple(_MIGRATIONS[:5])
        ),
        # Migrates fine, then every container exits at start.
        DemoVersion("1.1.0-crash", "1.1.0", "crash", tuple(_MIGRATIONS[:4])),
        # The compose releases: 1.1.0 adds a search service, 1.2.0 removes it.
        DemoVersion("1.1.0", "1.1.0", "normal", tuple(_MIGRATIONS[:4])),
        DemoVersion("1.2.0", "1.2.0", "normal", (*_MIGRATIONS[:4], "0006_holds.sql")),
        DemoVersion(
            "1.2.0-badmigration", "1.2.0", "badmigration", tuple(_MIGRATIONS[:5])
        ),
        DemoVersion(
            "1.2.0-unhealthy",
            "1.2.0",
            "unhealthy",
            (*_MIGRATIONS[:4], "0006_holds.sql"),
        ),
    )
}


# ---------------------------------------------------------------------------
# Base image: a root filesystem from host files
# ---------------------------------------------------------------------------


def _shared_libraries(binary: Path) -> list[Path]:
    """Every library ``ldd`` says the binary loads, the dynamic loader included."""
    output = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    libraries = []
    for line in output.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            if target.startswith("/"):
                libraries.append(Path(target))
        elif parts and parts[0].startswith("/"):
            libraries.append(Path(parts[0]))
    return libraries


def _base_files() -> dict[str, Path]:
    """Path in the image -> host file, for everything the base image holds."""
    for needed, package in (
        (BUSYBOX, "busybox-static"),
        (PSQL, "postgresql-client-15"),
        (CURL, "curl"),
    ):
        if not needed.exists():
            raise DemoBuildError(
                f"{needed} is missing; install the Debian package {package} "
                "(`make system-deps-test` does it)."
            )
    files = {"bin/busybox": BUSYBOX, "usr/bin/psql": PSQL, "usr/bin/curl": CURL}
    for binary in (PSQL, CURL):
        for library in _shared_libraries(binary):
            files[str(library).lstrip("/")] = library
    return files


def _base_fingerprint(files: dict[str, Path]) -> str:
    digest = hashlib.sha256(BASE_RECIPE.encode())
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


def _add_dir(archive: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    archive.addfile(info)


def _write_rootfs(path: Path, files: dict[str, Path]) -> None:
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    with tarfile.open(path, "w") as archive:
        for directory in ("bin", "usr", "usr/bin", "etc", "root", "var", "var/lib"):
            _add_dir(archive, directory)
        _add_dir(archive, "tmp", 0o1777)
        for name in sorted(files):
            # dereference: the image gets the library itself, not a host symlink
            archive.add(str(files[name].resolve()), arcname=name, recursive=False)
        for applet in applets:
            if applet in ("busybox",) or f"bin/{applet}" in files:
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            archive.addfile(link)
        _add_text(archive, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        _add_text(archive, "etc/group", "root:x:0:\n")
        _add_text(
            archive,
            "etc/nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files dns\n",
        )


def ensure_base_image(client: docker.DockerClient) -> str:
    """The base image's reference, imported from host files unless already present."""
    files = _base_files()
    reference = f"{BASE_REPOSITORY}:{_base_fingerprint(files)}"
    try:
        client.images.get(reference)
        return reference
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="clms-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _write_rootfs(rootfs, files)
        repository, tag = reference.split(":")
        client.api.import_image_from_file(
            str(rootfs),
            repository=repository,
            tag=tag,
            changes=[
                "ENV PATH=/usr/bin:/bin",
                "ENV PGGSSENCMODE=disable",
                "ENV HOME=/root",
                'CMD ["/bin/sh"]',
            ],
        )
    return reference


# ---------------------------------------------------------------------------
# Version images
# ---------------------------------------------------------------------------


def _context(base: str, version: DemoVersion) -> bytes:
    """The build context (a tar with its Dockerfile) for one version."""
    dockerfile = "\n".join(
        [
            f"FROM {base}",
            "COPY app/ /app/",
            "ENV CLMS_HTTP_PORT=8080 CLMS_STATE_DIR=/var/lib/clms",
            f'LABEL org.opencontainers.image.version="{version.version}" '
            f'org.clms.demo.variant="{version.variant}"',
            'ENTRYPOINT ["/app/bin/clms"]',
            'CMD ["serve"]',
            "",
        ]
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        _add_text(archive, "Dockerfile", dockerfile)
        for script in sorted((APP_DIR / "bin").iterdir()):
            _add_text(archive, f"app/bin/{script.name}", script.read_text(), 0o755)
        for migration in version.migrations:
            text = (APP_DIR / "migrations" / migration).read_text()
            _add_text(archive, f"app/migrations/{migration}", text)
        _add_text(archive, "app/seed.sql", (APP_DIR / "seed.sql").read_text())
        _add_text(archive, "app/VERSION", version.version + "\n")
        _add_text(archive, "app/VARIANT", version.variant + "\n")
    return buffer.getvalue()


def _build_version(
    client: docker.DockerClient, base: str, version: DemoVersion
) -> Image:
    context = _context(base, version)
    fingerprint = hashlib.sha256(context).hexdigest()[:16]
    local = f"{LOCAL_REPOSITORY}:{version.tag}"
    try:
        image = client.images.get(local)
        if image.labels.get(CONTEXT_LABEL) == fingerprint:
            return image
    except docker.errors.ImageNotFound:
        pass
    try:
        image, _logs = client.images.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=local,
            labels={CONTEXT_LABEL: fingerprint},
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as error:
        lines = "".join(str(chunk.get("stream", "")) for chunk in error.build_log)
        raise DemoBuildError(
            f"building demo {version.tag} failed: {error}\n{lines}"
        ) from error
    return image


def _push(client: docker.DockerClient, repository: str, tag: str) -> str:
    """Push one tag and return the manifest digest the registry stored."""
    digest = ""
    for event in client.api.push(repository, tag=tag, stream=True, decode=True):
        if "error" in event:
            raise DemoBuildError(f"pushing {repository}:{tag} failed: {event['error']}")
        aux = event.get("aux") or {}
        digest = aux.get("Digest", digest)
    if not digest:
        raise DemoBuildError(f"pushing {repository}:{tag} reported no digest")
    return digest


def build_and_push(client: docker.DockerClient, registry: str) -> dict[str, str]:
    """Build every demo version, push it, and map tag -> ``host:port/clms/app@sha256:…``."""
    base = ensure_base_image(client)
    repository = f"{registry}/{REPOSITORY}"
    references = {}
    for version in VERSIONS.values():
        image = _build_version(client, base, version)
        image.tag(repository, tag=version.tag)
        references[version.tag] = (
            f"{repository}@{_push(client, repository, version.tag)}"
        )
    return references
