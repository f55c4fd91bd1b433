"""The real Docker Compose CLI, found once and run with a deadline (both roles).

The agent applies a release with Compose itself, so the containers and their
labels are exactly what ``docker compose up -d`` makes, and a later
``docker compose up -d`` by hand changes nothing. It uses the Compose v2
plugin (``docker compose``) where the engine's CLI has it, else Debian's
``docker-compose`` (v1.29, which writes the same ``com.docker.compose.*``
labels); ``CLMS_COMPOSE_COMMAND`` picks one explicitly. The vendor server
validates a release's project with it before signing.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

# One compose call never runs longer than this unless the caller says so.
DEFAULT_TIMEOUT_SECONDS = 600


class ComposeUnavailable(Exception):
    """No Docker Compose CLI was found; the message says how to install one."""


class ComposeFailed(Exception):
    """A compose command failed; ``output`` holds what it printed."""

    def __init__(self, message: str, output: str = "", returncode: int = -1) -> None:
        super().__init__(message)
        self.output = output
        self.returncode = returncode


@dataclass(frozen=True)
class ComposeCli:
    """How to run compose here, and which one it is."""

    argv: tuple[str, ...]
    version: str

    @property
    def label(self) -> str:
        return f"{' '.join(self.argv)} {self.version}"

    @property
    def is_v1(self) -> bool:
        return self.argv[-1].endswith("docker-compose")


def _version(argv: Sequence[str]) -> str | None:
    try:
        result = subprocess.run(
            [*argv, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=30,
            env=_environment(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip().splitlines()[0].strip() if result.stdout else None


def _candidates() -> list[tuple[str, ...]]:
    configured = settings.CLMS_COMPOSE_COMMAND.strip()
    if configured:
        return [tuple(shlex.split(configured))]
    found: list[tuple[str, ...]] = []
    for docker in dict.fromkeys(
        filter(None, [shutil.which("docker"), "/usr/bin/docker"])
    ):
        if os.path.exists(docker):
            found.append((docker, "compose"))
    if legacy := shutil.which("docker-compose"):
        found.append((legacy,))
    return found


@functools.cache
def find_cli() -> ComposeCli:
    """The compose CLI to use (found once per process), or ``ComposeUnavailable``."""
    for argv in _candidates():
        version = _version(argv)
        if version:
            return ComposeCli(argv, version)
    raise ComposeUnavailable(
        "No Docker Compose was found: the agent applies releases with it. Install "
        "the Compose plugin (`docker compose`, the docker-compose-plugin package) "
        "or Debian's docker-compose, or set CLMS_COMPOSE_COMMAND to its command."
    )


def forget_cli() -> None:
    """Look for the CLI again on next use (tests; after installing it)."""
    find_cli.cache_clear()


# What compose may see of the agent's own environment: where the engine is and
# how to run. Nothing else, so that a project's ``.env`` decides its values (a
# variable in the caller's environment would win over the file otherwise).
PASSED_ENVIRONMENT = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CONFIG",
)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENVIRONMENT}
    env["DOCKER_HOST"] = settings.DOCKER_HOST
    # v1 asks for a terminal in `run` without -T; never prompt anyway.
    env["COMPOSE_INTERACTIVE_NO_CLI"] = "1"
    return env


def run(
    arguments: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    what: str = "",
    stdout_only: bool = False,
) -> str:
    """Run ``compose <arguments>``; its output, or ``ComposeFailed`` saying why.

    ``stdout_only`` leaves out what compose prints to stderr (progress,
    warnings), for commands whose output is parsed.
    """
    cli = find_cli()
    command = [*cli.argv, *arguments]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        output = _text(e.stdout) + _text(e.stderr)
        raise ComposeFailed(
            f"{what or 'docker compose'} did not finish within {timeout:g} s",
            str(output)[-4000:],
        ) from None
    output = (result.stdout or "") + (result.stderr or "")
    if result.returncode != 0:
        raise ComposeFailed(
            f"{what or 'docker compose'} failed (exit code {result.returncode}): "
            f"{_last_lines(output)}",
            output[-8000:],
            result.returncode,
        )
    return result.stdout if stdout_only else output


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _last_lines(output: str, count: int = 6) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "no output"
