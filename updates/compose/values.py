"""The school's values for the settings a release declares.

The values live in the project's env file (0600), the file compose reads;
nothing else keeps them. A secret is write-only: pages and the API say
whether it is set, never what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clms_updates.manifest import ReleaseManifest, parse_version
from clms_updates.manifest.compose import Setting
from updates.compose.project import (
    ProjectError,
    check_value,
    read_env,
    write_atomically,
)
from updates.models import AgentState, AvailableRelease


@dataclass(frozen=True)
class SettingState:
    """One declared setting and where its value stands at this school."""

    setting: Setting
    is_set: bool
    # The value to show (never a secret's; the default when the school gave none).
    shown: str

    @property
    def missing(self) -> bool:
        return self.setting.needs_value and not self.is_set


def states(manifest: ReleaseManifest, env: dict[str, str]) -> list[SettingState]:
    """Every setting ``manifest`` declares, with the school's value (if shown)."""
    found = []
    for setting in manifest.settings:
        value = env.get(setting.name, "")
        shown = "" if setting.secret else (value or setting.default or "")
        found.append(SettingState(setting, bool(value), shown))
    return found


def missing(manifest: ReleaseManifest, env: dict[str, str]) -> list[Setting]:
    """The required settings the school has not given yet (the update waits)."""
    return [s.setting for s in states(manifest, env) if s.missing]


def set_values(env_file: Path, values: dict[str, str]) -> list[str]:
    """Write ``values`` into the env file, keeping every other line; names changed.

    The file stays (or becomes) 0600: it holds secrets.
    """
    for name, value in values.items():
        check_value(name, value)
    try:
        lines = env_file.read_text().splitlines() if env_file.exists() else []
    except OSError as e:
        raise ProjectError(f"The env file {env_file} cannot be read: {e}") from None
    pending = dict(values)
    kept = []
    for line in lines:
        stripped = line.strip().removeprefix("export ")
        name = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
        if name and not stripped.startswith("#") and name in pending:
            kept.append(f"{name}={pending.pop(name)}")
        else:
            kept.append(line)
    kept += [f"{name}={value}" for name, value in pending.items()]
    write_atomically(env_file, "\n".join(kept) + "\n", mode=0o600)
    return sorted(values)


def current_values(env_file: Path) -> dict[str, str]:
    return read_env(env_file)


def declared_settings() -> dict[str, Setting]:
    """Every setting a release this installation may run declares, by name."""
    installed = parse_version(AgentState.load().installed_version)
    found: dict[str, Setting] = {}
    for release in AvailableRelease.objects.filter(withdrawn_at__isnull=True):
        if parse_version(release.version) < installed:
            continue
        for setting in release.manifest().settings:
            found.setdefault(setting.name, setting)
    return found
