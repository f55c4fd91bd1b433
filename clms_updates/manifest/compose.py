"""A release's Compose project, as both roles see it: what it may hold, what it uses.

A format-2 release manifest carries the vendor's compose definition (the
project: ``services``, ``volumes``, ``networks``) as a JSON object, signed with
the rest of the manifest. The vendor writes it as an ordinary compose file; a
few ``x-clms-*`` extensions in that file say what compose itself does not:

``x-clms-settings``   the variables the school provides (see ``Setting``)
``x-clms-migration``  ``{service, command, backward_compatible}``
``x-clms-health``     the release's health check (``HealthCheck`` fields)

``from_compose_file`` splits them off; what stays is the project. Everything
in it must be covered by the signature: every image is pinned by digest (or
built from the bundle's signed source), and nothing may pull files in from
outside (``build``, ``env_file``, ``extends``, ``include``, file-backed
``configs`` and ``secrets`` are refused). Every variable the project uses
(``${NAME}``) must be a declared setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

IMAGE_BY_DIGEST = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"@sha256:[0-9a-f]{64}$"
)
VARIABLE = re.compile(
    r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))"
)
SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")

TOP_LEVEL_KEYS = frozenset({"services", "volumes", "networks", "version"})
# Service keys that would pull in something the signature does not cover.
UNSIGNED_SERVICE_KEYS = ("build", "env_file", "extends")
EXTENSIONS = ("x-clms-settings", "x-clms-migration", "x-clms-health")


class ComposeError(ValueError):
    """The compose definition breaks a rule; the message names the service and key."""


@dataclass(frozen=True)
class Setting:
    """A variable the release's project uses, provided by the school.

    ``secret`` values are never shown again once given (write-only); a
    ``required`` setting without a default makes an update wait for the
    school's admin ("needs your input").
    """

    name: str
    description: str = ""
    default: str | None = None
    required: bool = False
    secret: bool = False

    @property
    def needs_value(self) -> bool:
        """The school must give a value: required, and no default to fall back on."""
        return self.required and not self.default

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "description": self.description,
            "name": self.name,
            "required": self.required,
            "secret": self.secret,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Setting:
        if not isinstance(data, dict):
            raise ComposeError(f"{where}: expected an object")
        unknown = sorted(
            set(data) - {"name", "description", "default", "required", "secret"}
        )
        if unknown:
            raise ComposeError(f"{where}: unknown field(s) {', '.join(unknown)}")
        name = data.get("name")
        if not isinstance(name, str) or not SETTING_NAME.match(name):
            raise ComposeError(
                f"{where}.name: {name!r} is not a setting name (CAPITALS, digits and "
                "underscores, starting with a letter)"
            )
        default = data.get("default")
        if default is not None and not isinstance(default, str):
            default = str(default)
        for flag in ("required", "secret"):
            if not isinstance(data.get(flag, False), bool):
                raise ComposeError(f"{where}.{flag}: expected true or false")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ComposeError(f"{where}.description: expected a string")
        return cls(
            name=name,
            description=description,
            default=default,
            required=bool(data.get("required", False)),
            secret=bool(data.get("secret", False)),
        )


def walk_strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (keys included), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)


def variables_used(project: dict[str, Any]) -> set[str]:
    """The ``${NAME}`` and ``$NAME`` variables the project interpolates."""
    found: set[str] = set()
    for text in walk_strings(project):
        for braced, bare in VARIABLE.findall(text):
            found.add(braced or bare)
    return found


def services(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = project.get("services")
    return services if isinstance(services, dict) else {}


def service_images(project: dict[str, Any]) -> dict[str, str]:
    """Service -> its ``image`` as written."""
    return {
        name: str(spec.get("image", ""))
        for name, spec in services(project).items()
        if isinstance(spec, dict)
    }


def normalise(value: Any) -> Any:
    """The project as signed data: floats become strings (signed JSON has no floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return str(value)


def check_project(
    project: Any,
    *,
    settings: tuple[Setting, ...],
    built_image: str | None = None,
    built_services: tuple[str, ...] = (),
) -> None:
    """Refuse a project that is not fully covered by the signature (see module doc)."""
    if not isinstance(project, dict):
        raise ComposeError("compose: expected an object (the compose project)")
    unknown = sorted(k for k in project if k not in TOP_LEVEL_KEYS)
    if unknown:
        raise ComposeError(
            f"compose: {', '.join(unknown)} cannot be part of a release (only "
            "services, volumes and networks; include, configs and secrets would pull "
            "in files the signature does not cover)"
        )
    found = services(project)
    if not found:
        raise ComposeError("compose.services: a release must run at least one service")
    for name, spec in found.items():
        where = f"compose.services.{name}"
        if not SERVICE_NAME.match(str(name)):
            raise ComposeError(f"{where}: {name!r} is not a valid service name")
        if not isinstance(spec, dict):
            raise ComposeError(f"{where}: expected an object")
        for key in UNSIGNED_SERVICE_KEYS:
            if key in spec:
                raise ComposeError(
                    f"{where}.{key}: not allowed in a release; it would use files the "
                    "signature does not cover (a source release builds from the "
                    "bundle's signed source instead)"
                )
        image = spec.get("image")
        if name in built_services:
            if image != built_image:
                raise ComposeError(
                    f"{where}.image: a service built from the bundle's source must run "
                    f"{built_image!r}, the image the build tags"
                )
        elif not isinstance(image, str) or not IMAGE_BY_DIGEST.match(image):
            raise ComposeError(
                f"{where}.image: {image!r} is not pinned to a digest "
                "(repository@sha256:…); a tag can be moved to other content"
            )
    declared = {s.name for s in settings}
    undeclared = sorted(variables_used(project) - declared)
    if undeclared:
        raise ComposeError(
            f"compose: the project uses {', '.join(undeclared)}, which the release does "
            "not declare as settings (x-clms-settings); the school could never set them"
        )
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ComposeError("settings: a setting is declared twice")


@dataclass(frozen=True)
class ProjectDiff:
    """What one release's project changes against another's."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: dict[str, tuple[str, ...]]
    new_settings: tuple[str, ...]
    volumes_added: tuple[str, ...]
    volumes_dropped: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.new_settings
            or self.volumes_added
            or self.volumes_dropped
        )

    def lines(self) -> list[str]:
        """The changes in words, one per line (what the release page lists)."""
        found = [f"service {name} added" for name in self.added]
        found += [
            f"service {name} removed (its volumes stay on the schools' servers)"
            for name in self.removed
        ]
        found += [
            f"service {name} changed: {', '.join(keys)}"
            for name, keys in self.changed.items()
        ]
        found += [
            f"new setting {name} (schools are asked for it)"
            for name in self.new_settings
        ]
        found += [f"volume {name} added" for name in self.volumes_added]
        found += [f"volume {name} no longer declared" for name in self.volumes_dropped]
        return found


def diff_projects(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    old_settings: tuple[Setting, ...] = (),
    new_settings: tuple[Setting, ...] = (),
) -> ProjectDiff:
    """Services added, removed and changed (with the keys that changed), new settings."""
    before, after = services(old or {}), services(new)
    changed = {
        name: tuple(
            sorted(
                key
                for key in set(before[name]) | set(after[name])
                if before[name].get(key) != after[name].get(key)
            )
        )
        for name in sorted(set(before) & set(after))
        if before[name] != after[name]
    }
    old_volumes = set((old or {}).get("volumes") or {})
    new_volumes = set(new.get("volumes") or {})
    return ProjectDiff(
        added=tuple(sorted(set(after) - set(before))),
        removed=tuple(sorted(set(before) - set(after))),
        changed=changed,
        new_settings=tuple(
            sorted({s.name for s in new_settings} - {s.name for s in old_settings})
        ),
        volumes_added=tuple(sorted(new_volumes - old_volumes)),
        volumes_dropped=tuple(sorted(old_volumes - new_volumes)),
    )


@dataclass(frozen=True)
class ComposeRelease:
    """A vendor's compose file, split into the project and the x-clms extensions."""

    project: dict[str, Any]
    settings: tuple[Setting, ...]
    migration: dict[str, Any] | None
    health: dict[str, Any] | None


def from_compose_file(text: str) -> ComposeRelease:
    """Read a vendor's compose file (YAML); raise ``ComposeError`` saying what is wrong.

    Top-level ``x-`` keys other than the ``x-clms-*`` extensions are YAML
    helpers (anchors) and are dropped once merged; so is ``version``.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ComposeError(f"the compose file is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ComposeError("the compose file must be a mapping (services: …)")
    raw_settings = data.get("x-clms-settings") or {}
    if isinstance(raw_settings, dict):
        raw_settings = [
            {"name": name, **(spec or {})} for name, spec in raw_settings.items()
        ]
    if not isinstance(raw_settings, list):
        raise ComposeError("x-clms-settings: expected a mapping of NAME: {…}")
    settings = tuple(
        Setting.from_dict(normalise(item), f"x-clms-settings[{i}]")
        for i, item in enumerate(raw_settings)
    )
    migration = data.get("x-clms-migration")
    if migration is not None:
        if not isinstance(migration, dict):
            raise ComposeError("x-clms-migration: expected {service, command}")
        command = migration.get("command")
        if isinstance(command, str):
            migration = {**migration, "command": command.split()}
    health = data.get("x-clms-health")
    if health is not None and not isinstance(health, dict):
        raise ComposeError(
            "x-clms-health: expected a mapping (path, expected_status …)"
        )
    project = {
        key: value
        for key, value in data.items()
        if not str(key).startswith("x-") and key != "version"
    }
    return ComposeRelease(
        project=normalise(project),
        settings=settings,
        migration=normalise(migration) if migration else None,
        health=normalise(health) if health else None,
    )
