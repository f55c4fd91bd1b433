"""Release manifests and indexes: their fields, canonical bytes and parsing.

Canonical JSON (what is signed and hashed): UTF-8, keys sorted, no insignificant
white space (``,`` and ``:`` separators), no NaN/Infinity, integers only (no
floats), times as ISO 8601 UTC with a ``Z`` and whole seconds. Two parties that
build the same object get the same bytes, so a signature made by the vendor
verifies on every school agent.

Every parser here refuses bad input with ``ManifestError`` naming the field and
the problem; nothing half-parsed leaves this module.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import semver

from clms_updates.manifest.compose import (
    ComposeError,
    Setting,
    check_project,
    service_images,
)
from clms_updates.manifest.compose import services as compose_services

FORMAT_VERSION = 1
# A manifest that carries its Compose project (and settings, and maybe source).
COMPOSE_FORMAT = 2
MANIFEST_FORMATS = (FORMAT_VERSION, COMPOSE_FORMAT)
MANIFEST_KIND = "release-manifest"
INDEX_KIND = "release-index"
# Index format 2: one document per product and channel, the same for every
# school of it; each entry says how far its staged rollout reached and the
# agent decides by its own bucket (``clms_updates.manifest.rollout``).
CHANNEL_INDEX_FORMAT = 2
INDEX_FORMATS = (FORMAT_VERSION, CHANNEL_INDEX_FORMAT)
CHANNELS = ("stable", "beta")

# repository[:port]/path@sha256:<64 hex>; a tag is not allowed anywhere.
IMAGE_BY_DIGEST = re.compile(
    r"^(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)@(?P<digest>sha256:[0-9a-f]{64})$"
)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
LOCAL_IMAGE = re.compile(
    r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
)


class ManifestError(ValueError):
    """Signed metadata is malformed or breaks the format; says which field and why."""


def canonical_json(data: Any) -> bytes:
    """The one byte encoding of ``data`` that is signed and hashed."""
    _refuse_floats(data, "")
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_floats(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise ManifestError(
            f"{path or 'value'}: floats are not allowed in signed metadata"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_floats(item, f"{path}[{i}]")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_version(text: str, *, field_name: str = "version") -> semver.Version:
    """Parse SemVer 2.0 (``1.2.3``, ``1.2.3-rc.1+build``), or raise ``ManifestError``."""
    if not isinstance(text, str):
        raise ManifestError(
            f"{field_name}: expected a SemVer string, got {type(text).__name__}"
        )
    try:
        return semver.Version.parse(text)
    except ValueError:
        raise ManifestError(
            f"{field_name}: {text!r} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH, "
            "for example 1.4.2 or 2.0.0-rc.1)"
        ) from None


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z and whole seconds: the only time format we sign."""
    if moment.tzinfo is None:
        raise ManifestError("times in signed metadata must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, field_name: str) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ManifestError(
            f"{field_name}: expected a UTC time like 2026-01-31T22:00:00Z, got {value!r}"
        )
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise ManifestError(
            f"{field_name}: {value!r} is not a valid ISO 8601 time"
        ) from None


# ---------------------------------------------------------------------------
# Parts of a manifest
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """One CLMS service's image, always by digest."""

    service: str
    reference: str

    @property
    def repository(self) -> str:
        return self.reference.split("@", 1)[0]

    @property
    def digest(self) -> str:
        return self.reference.split("@", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "service": self.service}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Image:
        _expect_keys(data, where, required={"service", "reference"})
        service, reference = data["service"], data["reference"]
        if not isinstance(service, str) or not SERVICE_NAME.match(service):
            raise ManifestError(
                f"{where}.service: {service!r} is not a valid service name"
            )
        if not isinstance(reference, str) or not IMAGE_BY_DIGEST.match(reference):
            if isinstance(reference, str) and "@" not in reference:
                raise ManifestError(
                    f"{where}.reference: {reference!r} names the image by tag; every image "
                    "must be given by digest (repository@sha256:…) so what is installed is "
                    "exactly what was signed"
                )
            raise ManifestError(
                f"{where}.reference: {reference!r} is not repository@sha256:<64 hex>"
            )
        return cls(service=service, reference=reference)


@dataclass(frozen=True)
class Bundle:
    """The offline ZIP of a release, by checksum and size."""

    filename: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Bundle:
        _expect_keys(data, where, required={"filename", "sha256", "size"})
        filename, digest, size = data["filename"], data["sha256"], data["size"]
        if (
            not isinstance(filename, str)
            or "/" in filename
            or "\\" in filename
            or not filename
        ):
            raise ManifestError(
                f"{where}.filename: {filename!r} must be a plain file name"
            )
        if not isinstance(digest, str) or not SHA256_HEX.match(digest):
            raise ManifestError(f"{where}.sha256: expected 64 lowercase hex characters")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ManifestError(
                f"{where}.size: expected a positive whole number of bytes"
            )
        return cls(filename=filename, sha256=digest, size=size)


@dataclass(frozen=True)
class Migration:
    """The command that migrates the CLMS database, run once in a one-off container.

    ``backward_compatible``: the previous version runs on the migrated schema, so
    a rollback after a successful migration keeps the data (format 2 only).
    """

    service: str
    command: tuple[str, ...]
    backward_compatible: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"command": list(self.command), "service": self.service}
        if self.backward_compatible:
            data["backward_compatible"] = True
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Migration:
        _expect_keys(
            data,
            where,
            required={"service", "command"},
            optional={"backward_compatible"},
        )
        command = data["command"]
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(part, str) and part for part in command)
        ):
            raise ManifestError(
                f"{where}.command: expected a non-empty list of strings"
            )
        if not isinstance(data["service"], str) or not SERVICE_NAME.match(
            data["service"]
        ):
            raise ManifestError(
                f"{where}.service: {data['service']!r} is not a valid service name"
            )
        compatible = data.get("backward_compatible", False)
        if not isinstance(compatible, bool):
            raise ManifestError(f"{where}.backward_compatible: expected true or false")
        return cls(
            service=data["service"],
            command=tuple(command),
            backward_compatible=compatible,
        )


@dataclass(frozen=True)
class HealthCheck:
    """The release's own health check: N consecutive good answers within a timeout."""

    path: str = "/health"
    expected_status: int = 200
    body_field: str = ""
    body_value: str = ""
    successes: int = 3
    interval_ms: int = 500
    timeout_seconds: int = 60

    def to_dict(self) -> dict[str, Any]:
        return {
            "body_field": self.body_field,
            "body_value": self.body_value,
            "expected_status": self.expected_status,
            "interval_ms": self.interval_ms,
            "path": self.path,
            "successes": self.successes,
            "timeout_seconds": self.timeout_seconds,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> HealthCheck:
        _expect_keys(
            data,
            where,
            required={"path"},
            optional={
                "expected_status",
                "body_field",
                "body_value",
                "successes",
                "interval_ms",
                "timeout_seconds",
            },
        )
        path = data["path"]
        if not isinstance(path, str) or not path.startswith("/"):
            raise ManifestError(
                f"{where}.path: expected a path starting with /, got {path!r}"
            )
        values: dict[str, Any] = {"path": path}
        limits = {
            "expected_status": (100, 599),
            "successes": (1, 100),
            "interval_ms": (50, 60_000),
            "timeout_seconds": (1, 3600),
        }
        for name, (low, high) in limits.items():
            if name in data:
                value = data[name]
                if (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not low <= value <= high
                ):
                    raise ManifestError(
                        f"{where}.{name}: expected a whole number from {low} to {high}"
                    )
                values[name] = value
        for name in ("body_field", "body_value"):
            if name in data:
                if not isinstance(data[name], str):
                    raise ManifestError(f"{where}.{name}: expected a string")
                values[name] = data[name]
        return cls(**values)


@dataclass(frozen=True)
class BaseImage:
    """An image a source release builds ``FROM``, shipped in its bundle, by digest."""

    reference: str
    config: str

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "reference": self.reference}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> BaseImage:
        _expect_keys(data, where, required={"reference", "config"})
        if not isinstance(data["reference"], str) or not IMAGE_BY_DIGEST.match(
            data["reference"]
        ):
            raise ManifestError(
                f"{where}.reference: expected repository@sha256:<64 hex>"
            )
        config = data["config"]
        if not isinstance(config, str) or not re.match(
            r"^sha256:[0-9a-f]{64}$", config
        ):
            raise ManifestError(f"{where}.config: expected sha256:<64 hex>")
        return cls(reference=data["reference"], config=config)


@dataclass(frozen=True)
class SourceBuild:
    """A source release: what the agent builds, offline, from the bundle's source.

    ``sha256`` is the digest of the source tree (``bundle.tree_digest``);
    ``image`` is the local name the build tags; ``services`` run it.
    """

    sha256: str
    image: str
    services: tuple[str, ...]
    base_images: tuple[BaseImage, ...]
    dockerfile: str = "Dockerfile"

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_images": [b.to_dict() for b in self.base_images],
            "dockerfile": self.dockerfile,
            "image": self.image,
            "services": list(self.services),
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> SourceBuild:
        _expect_keys(
            data,
            where,
            required={"sha256", "image", "services", "base_images"},
            optional={"dockerfile"},
        )
        if not isinstance(data["sha256"], str) or not SHA256_HEX.match(data["sha256"]):
            raise ManifestError(f"{where}.sha256: expected 64 lowercase hex characters")
        image = data["image"]
        if not isinstance(image, str) or not LOCAL_IMAGE.match(image):
            raise ManifestError(
                f"{where}.image: {image!r} is not a local image name (name:tag)"
            )
        built = data["services"]
        if (
            not isinstance(built, list)
            or not built
            or not all(isinstance(x, str) and SERVICE_NAME.match(x) for x in built)
        ):
            raise ManifestError(f"{where}.services: expected a list of service names")
        bases = data["base_images"]
        if not isinstance(bases, list) or not bases:
            raise ManifestError(
                f"{where}.base_images: a source release ships every image it builds FROM"
            )
        dockerfile = data.get("dockerfile", "Dockerfile")
        if (
            not isinstance(dockerfile, str)
            or dockerfile.startswith("/")
            or ".." in dockerfile.split("/")
        ):
            raise ManifestError(
                f"{where}.dockerfile: expected a path inside the source"
            )
        return cls(
            sha256=data["sha256"],
            image=image,
            services=tuple(built),
            base_images=tuple(
                BaseImage.from_dict(b, f"{where}.base_images[{i}]")
                for i, b in enumerate(bases)
            ),
            dockerfile=dockerfile,
        )


# ---------------------------------------------------------------------------
# The release manifest
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseManifest:
    """Everything a school installs for one release, bound together by one signature."""

    product: str
    version: str
    channel: str
    released_at: datetime
    expires: datetime
    images: tuple[Image, ...]
    health: HealthCheck = field(default_factory=HealthCheck)
    critical: bool = False
    force_after: datetime | None = None
    min_version: str | None = None
    changelog: str = ""
    bundle: Bundle | None = None
    migration: Migration | None = None
    # Format 2: the vendor's compose project, the settings it uses, its source.
    compose: dict[str, Any] | None = None
    settings: tuple[Setting, ...] = ()
    source: SourceBuild | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def format(self) -> int:
        return COMPOSE_FORMAT if self.compose is not None else FORMAT_VERSION

    @property
    def services(self) -> tuple[str, ...]:
        """The services the release runs (its project's, or its images' in format 1)."""
        if self.compose is not None:
            return tuple(sorted(compose_services(self.compose)))
        return tuple(sorted(i.service for i in self.images))

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    @property
    def semver(self) -> semver.Version:
        return parse_version(self.version)

    def validate(self) -> None:
        """Check the rules that span fields; raise ``ManifestError`` on the first broken one."""
        if not isinstance(self.product, str) or not SERVICE_NAME.match(self.product):
            raise ManifestError(
                f"product: {self.product!r} is not a valid product name"
            )
        version = parse_version(self.version)
        if self.channel not in CHANNELS:
            raise ManifestError(
                f"channel: {self.channel!r} is not one of {', '.join(CHANNELS)}"
            )
        if not self.images and self.source is None:
            raise ManifestError("images: a release must name at least one image")
        services = [image.service for image in self.images]
        if len(set(services)) != len(services):
            raise ManifestError("images: a service is named twice")
        if self.compose is not None:
            self._validate_project()
            services = list(self.services)
        elif self.settings or self.source is not None:
            raise ManifestError(
                "settings, source: only a release with a compose project has these"
            )
        if self.critical and self.force_after is None:
            raise ManifestError("force_after: a critical release needs a deadline")
        if not self.critical and self.force_after is not None:
            raise ManifestError("force_after: only a critical release has a deadline")
        if (
            self.min_version is not None
            and parse_version(self.min_version, field_name="min_version") >= version
        ):
            raise ManifestError(
                f"min_version: {self.min_version} must be lower than the version {self.version}"
            )
        if self.expires <= self.released_at:
            raise ManifestError("expires: must be after released_at")
        if self.migration is not None and self.migration.service not in services:
            raise ManifestError(
                f"migration.service: {self.migration.service!r} is not one of the release's services"
            )

    def _validate_project(self) -> None:
        """Format 2: the project is signed whole, and the images list is derived from it."""
        assert self.compose is not None
        source = self.source
        try:
            check_project(
                self.compose,
                settings=self.settings,
                built_image=source.image if source else None,
                built_services=source.services if source else (),
            )
        except ComposeError as e:
            raise ManifestError(str(e)) from None
        built = set(source.services) if source else set()
        expected = {
            name: image
            for name, image in service_images(self.compose).items()
            if name not in built
        }
        listed = {image.service: image.reference for image in self.images}
        if listed != expected:
            raise ManifestError(
                "images: must list exactly the project's services and their pinned "
                "images (it is derived from compose when publishing)"
            )
        if source is not None and not set(source.services) <= set(
            compose_services(self.compose)
        ):
            raise ManifestError("source.services: names a service the project lacks")

    def to_dict(self) -> dict[str, Any]:
        data = self._format_1_dict()
        if self.compose is None:
            return data
        data["format"] = COMPOSE_FORMAT
        data["compose"] = self.compose
        data["settings"] = [s.to_dict() for s in self.settings]
        data["source"] = self.source.to_dict() if self.source else None
        return data

    def _format_1_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle.to_dict() if self.bundle else None,
            "changelog": self.changelog,
            "channel": self.channel,
            "critical": self.critical,
            "expires": format_time(self.expires),
            "force_after": format_time(self.force_after) if self.force_after else None,
            "format": FORMAT_VERSION,
            "health": self.health.to_dict(),
            "images": [image.to_dict() for image in self.images],
            "kind": MANIFEST_KIND,
            "migration": self.migration.to_dict() if self.migration else None,
            "min_version": self.min_version,
            "product": self.product,
            "released_at": format_time(self.released_at),
            "version": self.version,
        }

    def to_bytes(self) -> bytes:
        """The canonical bytes that are signed and whose sha256 the index lists."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> ReleaseManifest:
        _expect_keys(
            data,
            "manifest",
            required={
                "format",
                "kind",
                "product",
                "version",
                "channel",
                "released_at",
                "expires",
                "images",
                "health",
            },
            optional={
                "critical",
                "force_after",
                "min_version",
                "changelog",
                "bundle",
                "migration",
                "compose",
                "settings",
                "source",
            },
        )
        _expect_format(data, MANIFEST_KIND, "manifest", formats=MANIFEST_FORMATS)
        composed = data["format"] == COMPOSE_FORMAT
        if composed != ("compose" in data):
            raise ManifestError(
                "compose: a format-2 manifest carries its compose project, a format-1 "
                "manifest does not"
            )
        settings_data = data.get("settings") or []
        if not isinstance(settings_data, list):
            raise ManifestError("settings: expected a list")
        try:
            declared = tuple(
                Setting.from_dict(item, f"settings[{i}]")
                for i, item in enumerate(settings_data)
            )
        except ComposeError as e:
            raise ManifestError(str(e)) from None
        images = data["images"]
        if not isinstance(images, list):
            raise ManifestError("images: expected a list")
        critical = data.get("critical", False)
        if not isinstance(critical, bool):
            raise ManifestError("critical: expected true or false")
        changelog = data.get("changelog", "")
        if not isinstance(changelog, str):
            raise ManifestError("changelog: expected a string")
        min_version = data.get("min_version")
        if min_version is not None and not isinstance(min_version, str):
            raise ManifestError("min_version: expected a SemVer string or null")
        return cls(
            product=data["product"],
            version=data["version"],
            channel=data["channel"],
            released_at=parse_time(data["released_at"], "released_at"),
            expires=parse_time(data["expires"], "expires"),
            images=tuple(
                Image.from_dict(item, f"images[{i}]") for i, item in enumerate(images)
            ),
            health=HealthCheck.from_dict(data["health"], "health"),
            critical=critical,
            force_after=parse_time(data["force_after"], "force_after")
            if data.get("force_after")
            else None,
            min_version=min_version,
            changelog=changelog,
            bundle=Bundle.from_dict(data["bundle"], "bundle")
            if data.get("bundle")
            else None,
            migration=Migration.from_dict(data["migration"], "migration")
            if data.get("migration")
            else None,
            compose=data.get("compose") if composed else None,
            settings=declared,
            source=SourceBuild.from_dict(data["source"], "source")
            if data.get("source")
            else None,
        )


# ---------------------------------------------------------------------------
# The release index
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """One release as the index lists it; the manifest is bound by its sha256."""

    version: str
    channel: str
    manifest_sha256: str
    released_at: datetime
    critical: bool = False
    force_after: datetime | None = None
    min_version: str | None = None
    # Format 2 only: the share of schools (0-100) the staged rollout reached.
    rollout_percent: int | None = None

    @property
    def semver(self) -> semver.Version:
        return parse_version(self.version)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channel": self.channel,
            "critical": self.critical,
            "force_after": format_time(self.force_after) if self.force_after else None,
            "manifest_sha256": self.manifest_sha256,
            "min_version": self.min_version,
            "released_at": format_time(self.released_at),
            "version": self.version,
        }
        if self.rollout_percent is not None:
            data["rollout_percent"] = self.rollout_percent
        return data

    @classmethod
    def for_manifest(cls, manifest: ReleaseManifest) -> IndexEntry:
        """The entry that lists ``manifest``."""
        return cls(
            version=manifest.version,
            channel=manifest.channel,
            manifest_sha256=sha256_hex(manifest.to_bytes()),
            released_at=manifest.released_at,
            critical=manifest.critical,
            force_after=manifest.force_after,
            min_version=manifest.min_version,
        )

    @classmethod
    def from_dict(cls, data: Any, where: str) -> IndexEntry:
        _expect_keys(
            data,
            where,
            required={"version", "channel", "manifest_sha256", "released_at"},
            optional={"critical", "force_after", "min_version", "rollout_percent"},
        )
        percent = data.get("rollout_percent")
        if percent is not None and (
            not isinstance(percent, int)
            or isinstance(percent, bool)
            or not 0 <= percent <= 100
        ):
            raise ManifestError(
                f"{where}.rollout_percent: expected a whole number from 0 to 100"
            )
        parse_version(data["version"], field_name=f"{where}.version")
        if data["channel"] not in CHANNELS:
            raise ManifestError(
                f"{where}.channel: {data['channel']!r} is not one of {', '.join(CHANNELS)}"
            )
        if not isinstance(data["manifest_sha256"], str) or not SHA256_HEX.match(
            data["manifest_sha256"]
        ):
            raise ManifestError(
                f"{where}.manifest_sha256: expected 64 lowercase hex characters"
            )
        min_version = data.get("min_version")
        if min_version is not None:
            parse_version(min_version, field_name=f"{where}.min_version")
        critical = data.get("critical", False)
        if not isinstance(critical, bool):
            raise ManifestError(f"{where}.critical: expected true or false")
        return cls(
            version=data["version"],
            channel=data["channel"],
            manifest_sha256=data["manifest_sha256"],
            released_at=parse_time(data["released_at"], f"{where}.released_at"),
            critical=critical,
            force_after=parse_time(data["force_after"], f"{where}.force_after")
            if data.get("force_after")
            else None,
            min_version=min_version,
            rollout_percent=percent,
        )

    def check_matches(self, manifest: ReleaseManifest, manifest_bytes: bytes) -> None:
        """Refuse a manifest that is not the one this entry lists (mixing releases)."""
        digest = sha256_hex(manifest_bytes)
        if digest != self.manifest_sha256:
            raise ManifestError(
                f"manifest of {self.version}: its sha256 {digest[:12]}… differs from the "
                f"index's {self.manifest_sha256[:12]}…; it is not the release the index lists"
            )
        for name in ("version", "channel", "critical", "force_after", "min_version"):
            if getattr(manifest, name) != getattr(self, name):
                raise ManifestError(
                    f"manifest of {self.version}: {name} is {getattr(manifest, name)!r} "
                    f"but the index says {getattr(self, name)!r}"
                )


@dataclass(frozen=True)
class ReleaseIndex:
    """The signed list of current releases, with a growing sequence and an expiry."""

    product: str
    sequence: int
    generated_at: datetime
    expires: datetime
    releases: tuple[IndexEntry, ...] = ()
    # Format 2: the channel every school reading it follows (None: format 1,
    # a document made for one school's view).
    channel: str | None = None

    @property
    def format(self) -> int:
        return CHANNEL_INDEX_FORMAT if self.channel is not None else FORMAT_VERSION

    def __post_init__(self) -> None:
        if (
            not isinstance(self.sequence, int)
            or isinstance(self.sequence, bool)
            or self.sequence < 1
            or self.sequence > 2**63 - 1
        ):
            raise ManifestError("sequence: expected a whole number from 1 to 2^63 - 1")
        if self.expires <= self.generated_at:
            raise ManifestError("expires: must be after generated_at")
        versions = [entry.version for entry in self.releases]
        if len(set(versions)) != len(versions):
            raise ManifestError("releases: a version is listed twice")
        if self.channel is not None and self.channel not in CHANNELS:
            raise ManifestError(
                f"channel: {self.channel!r} is not one of {', '.join(CHANNELS)}"
            )
        staged = {entry.rollout_percent is not None for entry in self.releases}
        if staged - {self.channel is not None}:
            raise ManifestError(
                "releases: rollout_percent belongs to every entry of a channel index "
                "(format 2) and to none of a format 1 index"
            )

    def entry(self, version: str) -> IndexEntry | None:
        return next((e for e in self.releases if e.version == version), None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "expires": format_time(self.expires),
            "format": self.format,
            "generated_at": format_time(self.generated_at),
            "kind": INDEX_KIND,
            "product": self.product,
            "releases": [entry.to_dict() for entry in self.releases],
            "sequence": self.sequence,
        }
        if self.channel is not None:
            data["channel"] = self.channel
        return data

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> ReleaseIndex:
        _expect_keys(
            data,
            "index",
            required={
                "format",
                "kind",
                "product",
                "sequence",
                "generated_at",
                "expires",
                "releases",
            },
            optional={"channel"},
        )
        _expect_format(data, INDEX_KIND, "index", formats=INDEX_FORMATS)
        if (data["format"] == CHANNEL_INDEX_FORMAT) != ("channel" in data):
            raise ManifestError(
                "index: a format 2 index names its channel, a format 1 index does not"
            )
        if not isinstance(data["releases"], list):
            raise ManifestError("releases: expected a list")
        return cls(
            product=data["product"],
            sequence=data["sequence"],
            generated_at=parse_time(data["generated_at"], "generated_at"),
            expires=parse_time(data["expires"], "expires"),
            releases=tuple(
                IndexEntry.from_dict(item, f"releases[{i}]")
                for i, item in enumerate(data["releases"])
            ),
            channel=data.get("channel"),
        )


# ---------------------------------------------------------------------------
# Parsing bytes
# ---------------------------------------------------------------------------


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ManifestError(f"{what}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ManifestError(
            f"{what}: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None


def parse_manifest(data: bytes) -> ReleaseManifest:
    """Parse manifest bytes (signature checked separately, before trusting them)."""
    return ReleaseManifest.from_dict(_load_json(data, "manifest"))


def parse_index(data: bytes) -> ReleaseIndex:
    """Parse index bytes (signature checked separately, before trusting them)."""
    return ReleaseIndex.from_dict(_load_json(data, "index"))


def _expect_keys(
    data: Any, where: str, *, required: Set[str], optional: Set[str] = frozenset()
) -> None:
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected an object, got {type(data).__name__}")
    missing = sorted(required - data.keys())
    if missing:
        raise ManifestError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(data.keys() - required - optional)
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _expect_format(
    data: dict[str, Any],
    kind: str,
    where: str,
    *,
    formats: tuple[int, ...] = (FORMAT_VERSION,),
) -> None:
    if data["kind"] != kind:
        raise ManifestError(f"{where}: kind is {data['kind']!r}, expected {kind!r}")
    if data["format"] not in formats or isinstance(data["format"], bool):
        readable = " or ".join(str(f) for f in formats)
        raise ManifestError(
            f"{where}: format {data['format']!r} is not supported by this agent (it reads "
            f"format {readable}); update the agent first"
        )
