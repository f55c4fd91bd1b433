"""Rewrite image references in the compose env file, atomically."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from updates.runtime.errors import EnvFileError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def update_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Set ``NAME=value`` for each item in ``values``, keeping every other line.

    Existing assignments (``NAME=…`` or ``export NAME=…``) are replaced in
    place, missing ones appended. The new content goes to a temporary file in
    the same folder which then replaces the old one, so a crash leaves either
    the old file or the new one, never half of each. Mode and owner are kept.
    """
    for name, value in values.items():
        if not _NAME.match(name) or "\n" in value or "\r" in value:
            raise EnvFileError(
                f"Refusing to write {name!r}={value!r} to {path}: not a valid single-line assignment."
            )
    try:
        original = path.read_text()
        stat = path.stat()
    except FileNotFoundError as error:
        raise EnvFileError(
            f"The compose env file {path} does not exist, so `docker compose up` would "
            "not keep this update. Point the setting at the stack's env file."
        ) from error
    pending = dict(values)
    lines = []
    for line in original.splitlines():
        stripped = line.strip()
        prefix = "export " if stripped.startswith("export ") else ""
        name = stripped.removeprefix("export ").split("=", 1)[0].strip()
        if "=" in stripped and name in pending:
            lines.append(f"{prefix}{name}={pending.pop(name)}")
        else:
            lines.append(line)
    lines.extend(f"{name}={value}" for name, value in pending.items())
    content = "\n".join(lines) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, stat.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(temporary, stat.st_uid, stat.st_gid)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise EnvFileError(
            f"Could not rewrite {path} ({error}); it was left unchanged."
        ) from error
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_env_file(path: Path) -> dict[str, str]:
    """The assignments in an env file (comments and blank lines skipped)."""
    result = {}
    for line in path.read_text().splitlines():
        stripped = line.strip().removeprefix("export ")
        if stripped and not stripped.startswith("#") and "=" in stripped:
            name, value = stripped.split("=", 1)
            result[name.strip()] = value
    return result
