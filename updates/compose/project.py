"""The school's Compose project on disk: where it is, what it holds, how it is written.

A *managed* project (every installation after its first compose release) is
one folder (``CLMS_PROJECT_DIR``)::

    compose.yaml            the vendor's definition of the installed release,
                            written by the agent (never edit it)
    compose.override.yaml   the school's own additions (ports, mounts, limits);
                            kept across updates and applied on top
    .env                    the school's settings (0600), and COMPOSE_FILE /
                            COMPOSE_PROJECT_NAME so that a plain ``docker compose
                            up -d`` in the folder is the agent's own command
    .clms/project.json      which release the files describe (for drift checks)
    .clms/snapshots/        the files as they were before each run (rollback)

An installation made before compose releases keeps its own compose file(s) and
env file (found from the containers' compose labels, or ``CLMS_COMPOSE_FILE``
and ``CLMS_COMPOSE_ENV_FILE``) until its first compose release *adopts* it:
the agent then writes the managed files beside them, starting the new ``.env``
from the old env file's values.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

COMPOSE_NAME = "compose.yaml"
OVERRIDE_NAME = "compose.override.yaml"
ENV_NAME = ".env"
STATE_NAME = ".clms"
HEADER = (
    "# Written by CLMS Updates: the vendor's definition of CLMS {version}.\n"
    "# Do not edit: the next update replaces it. Put your own changes (extra\n"
    "# ports, mounts, resource limits) in compose.override.yaml beside it.\n"
)
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"
ENV_FILE_LABEL = "com.docker.compose.project.environment_file"
OVERRIDE_SKELETON = (
    "# Your own additions to CLMS, applied on top of every release and kept across\n"
    "# updates (CLMS Updates never rewrites this file). For example, to limit the\n"
    "# app's memory:\n"
    "#\n"
    "# services:\n"
    "#   app:\n"
    "#     mem_limit: 2g\n"
    "services: {}\n"
    "# (Declaring the default network changes nothing; it tells docker-compose v1\n"
    "# that this file is in the same format as compose.yaml.)\n"
    "networks:\n"
    "  default: {}\n"
)
# Values compose v1 and v2 both read the same way from an env file.
UNSAFE_VALUE_CHARACTERS = ('"', "'", "\\", "$", "\n", "\r", "`")


class ProjectError(Exception):
    """The project's files are missing or cannot be read or written; says which."""


@dataclass
class Layout:
    """The files compose is run with for the school's project."""

    directory: Path
    name: str
    config_files: list[Path]
    env_file: Path
    managed: bool
    version: str = ""
    compose_sha256: str = ""

    def arguments(self) -> list[str]:
        """What goes before every compose command (project, files, env file)."""
        args = ["--project-name", self.name, "--project-directory", str(self.directory)]
        for path in self.config_files:
            args += ["-f", str(path)]
        if self.managed and (self.directory / OVERRIDE_NAME).is_file():
            args += ["-f", str(self.directory / OVERRIDE_NAME)]
        return [*args, "--env-file", str(self.env_file)]

    @property
    def override_file(self) -> Path:
        return self.directory / OVERRIDE_NAME

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["directory"] = str(self.directory)
        data["config_files"] = [str(p) for p in self.config_files]
        data["env_file"] = str(self.env_file)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        return cls(
            directory=Path(data["directory"]),
            name=str(data["name"]),
            config_files=[Path(p) for p in data["config_files"]],
            env_file=Path(data["env_file"]),
            managed=bool(data["managed"]),
            version=str(data.get("version", "")),
            compose_sha256=str(data.get("compose_sha256", "")),
        )


def project_name() -> str:
    return str(settings.CLMS_COMPOSE_PROJECT)


def _state_file(directory: Path) -> Path:
    return directory / STATE_NAME / "project.json"


def current_layout(labels: list[dict[str, str]]) -> Layout:
    """The installation's project as it stands, from its own record or the labels.

    ``labels`` are the compose labels of the project's containers (used only
    for an installation not adopted yet).
    """
    directory = _directory(labels)
    record = _state_file(directory)
    if record.is_file():
        try:
            return Layout.from_dict(json.loads(record.read_text()))
        except (OSError, ValueError, KeyError) as e:
            raise ProjectError(
                f"{record} cannot be read ({e}); it records the installed project. "
                "Restore it from a backup of the folder, or delete it and the agent "
                "treats the project as not adopted yet."
            ) from None
    return Layout(
        directory=directory,
        name=project_name(),
        config_files=_legacy_config_files(directory, labels),
        env_file=_legacy_env_file(directory, labels),
        managed=False,
    )


def locate(labels: Callable[[], list[dict[str, str]]]) -> Layout:
    """The installation's project, asking the engine for labels only if needed.

    With ``CLMS_PROJECT_DIR`` set (and, before adoption, the compose and env
    files it cannot find by itself) the engine is not asked at all.
    """
    if settings.CLMS_PROJECT_DIR:
        directory = Path(settings.CLMS_PROJECT_DIR)
        if _state_file(directory).is_file() or settings.CLMS_COMPOSE_ENV_FILE:
            try:
                return current_layout([])
            except ProjectError:
                pass
    return current_layout(labels())


def _directory(labels: list[dict[str, str]]) -> Path:
    if settings.CLMS_PROJECT_DIR:
        return Path(settings.CLMS_PROJECT_DIR)
    found = {lab.get(WORKING_DIR_LABEL, "") for lab in labels} - {""}
    if len(found) != 1:
        raise ProjectError(
            "The folder of the CLMS compose project is not known (its containers name "
            f"{len(found)} working directories). Set CLMS_PROJECT_DIR to the folder "
            "that holds the stack's compose file. Nothing was changed."
        )
    return Path(found.pop())


def _legacy_config_files(directory: Path, labels: list[dict[str, str]]) -> list[Path]:
    configured = settings.CLMS_COMPOSE_FILE
    if configured:
        names = [n.strip() for n in configured.split(",") if n.strip()]
    else:
        found = {lab.get(CONFIG_FILES_LABEL, "") for lab in labels} - {""}
        names = found.pop().split(",") if len(found) == 1 else []
    if not names and (directory / COMPOSE_NAME).is_file():
        names = [COMPOSE_NAME]
    files = [p if p.is_absolute() else directory / p for p in map(Path, names)]
    missing = [str(p) for p in files if not p.is_file()]
    if not files or missing:
        raise ProjectError(
            "The compose file of the CLMS stack is not found"
            + (f" ({', '.join(missing)} is missing)" if missing else "")
            + ". Set CLMS_COMPOSE_FILE (and CLMS_PROJECT_DIR) to the stack's compose "
            "file. Nothing was changed."
        )
    return files


def _legacy_env_file(directory: Path, labels: list[dict[str, str]]) -> Path:
    configured = settings.CLMS_COMPOSE_ENV_FILE
    if configured:
        path = Path(configured)
    else:
        found = {lab.get(ENV_FILE_LABEL, "") for lab in labels} - {""}
        path = Path(found.pop()) if len(found) == 1 else directory / ENV_NAME
    path = path if path.is_absolute() else directory / path
    if not path.is_file():
        raise ProjectError(
            f"The compose env file {path} does not exist, so a later `docker compose "
            "up` would not keep an update. Set CLMS_COMPOSE_ENV_FILE to the stack's env "
            "file. Nothing was changed."
        )
    return path


def managed_layout(
    directory: Path, *, version: str, compose_sha256: str, name: str = ""
) -> Layout:
    """The managed files of a project in ``directory`` (named ``name``, default CLMS's)."""
    return Layout(
        directory=directory,
        name=name or project_name(),
        config_files=[directory / COMPOSE_NAME],
        env_file=directory / ENV_NAME,
        managed=True,
        version=version,
        compose_sha256=compose_sha256,
    )


# ---------------------------------------------------------------------------
# The env file
# ---------------------------------------------------------------------------


def read_env(path: Path) -> dict[str, str]:
    """The assignments of an env file (comments and blank lines skipped)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ProjectError(f"The env file {path} cannot be read: {e}") from None
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip().removeprefix("export ")
        if stripped and not stripped.startswith("#") and "=" in stripped:
            name, value = stripped.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def check_value(name: str, value: str) -> None:
    """Refuse a value compose v1 and v2 would read differently from an env file."""
    bad = [c for c in UNSAFE_VALUE_CHARACTERS if c in value]
    if bad or value != value.strip():
        shown = ", ".join(repr(c) for c in bad) or "spaces at its ends"
        raise ProjectError(
            f"The value of {name} contains {shown}; compose reads those differently "
            "depending on its version, so they are not accepted in settings. Use "
            "letters, digits and . _ - + / : @ = , ; # %."
        )


def write_env(path: Path, values: dict[str, str], *, keep: dict[str, str]) -> None:
    """Write ``keep`` then ``values`` (which win) as ``NAME=value`` lines, 0600, atomically."""
    merged = {**keep, **values}
    for name, value in merged.items():
        check_value(name, value)
    body = "".join(f"{name}={value}\n" for name, value in merged.items())
    write_atomically(
        path,
        "# The school's settings for CLMS (written by CLMS Updates; secrets inside).\n"
        + body,
        mode=0o600,
    )


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as e:
        Path(temporary).unlink(missing_ok=True)
        raise ProjectError(
            f"{path} could not be written ({e}); it is unchanged."
        ) from e


# ---------------------------------------------------------------------------
# Rendering a release, and snapshots for rollback
# ---------------------------------------------------------------------------


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_override(directory: Path) -> Path:
    """The school's override file, created (adding nothing) when it is missing.

    It always exists in a managed project so that ``COMPOSE_FILE`` can name
    it: a plain ``docker compose up -d`` in the folder then applies exactly
    what the agent applies.
    """
    path = directory / OVERRIDE_NAME
    if not path.exists():
        write_atomically(path, OVERRIDE_SKELETON)
    return path


def override_services(layout: Layout) -> list[str]:
    """The services the school's override file changes (empty: it adds nothing)."""
    try:
        data = yaml.safe_load(layout.override_file.read_text())
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    return sorted((data.get("services") or {}).keys())


def record(layout: Layout) -> None:
    """Remember which files describe the installation (``.clms/project.json``)."""
    write_atomically(
        _state_file(layout.directory), json.dumps(layout.as_dict(), indent=2)
    )


@dataclass
class Snapshot:
    """The project's files as they were, to put back on a rollback."""

    layout: dict[str, Any]
    contents: dict[str, str | None] = field(default_factory=dict)
    had_record: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def snapshot(layout: Layout) -> Snapshot:
    """The contents of every file a run may change (``None``: did not exist)."""
    paths = [
        *layout.config_files,
        layout.env_file,
        layout.directory / COMPOSE_NAME,
        layout.directory / ENV_NAME,
        _state_file(layout.directory),
    ]
    contents: dict[str, str | None] = {}
    for path in paths:
        try:
            contents[str(path)] = path.read_text()
        except FileNotFoundError:
            contents[str(path)] = None
        except OSError as e:
            raise ProjectError(
                f"{path} cannot be read ({e}); nothing was changed."
            ) from e
    return Snapshot(
        layout=layout.as_dict(),
        contents=contents,
        had_record=_state_file(layout.directory).is_file(),
    )


def restore(saved: dict[str, Any]) -> Layout:
    """Put every file of a snapshot back as it was; the layout it describes."""
    snap = Snapshot(**saved)
    for name, text in snap.contents.items():
        path = Path(name)
        if text is None:
            path.unlink(missing_ok=True)
        else:
            mode = 0o600 if path.name == ENV_NAME or path.suffix == ".env" else 0o644
            write_atomically(path, text, mode=mode)
    return Layout.from_dict(snap.layout)
