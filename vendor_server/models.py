"""What the vendor server stores: releases, schools, their check-ins and reports.

The signed bytes live on the rows (``Release.manifest_json`` and its signature)
so the API serves them without calling gpg; the index is signed per distinct
set of visible releases and cached (see ``indexing``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date
from typing import ClassVar

import semver
from django.conf import settings
from django.db import models
from django.utils import timezone

API_KEY_PREFIX = "clms_"


class Channel(models.TextChoices):
    STABLE = "stable", "Stable"
    BETA = "beta", "Beta"


def hash_api_key(key: str) -> str:
    """The sha256 hex stored in place of a school's API key (never the key itself)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_epoch() -> str:
    return secrets.token_hex(16)


def new_api_key() -> str:
    """A fresh random API key, shown once to the vendor staff member."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


class School(models.Model):
    """A school running CLMS whose agent polls this server with its API key."""

    name = models.CharField(max_length=200, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    channel = models.CharField(
        max_length=10, choices=Channel.choices, default=Channel.STABLE
    )
    api_key_hash = models.CharField(max_length=64, unique=True, editable=False)
    api_key_hint = models.CharField(
        max_length=12, blank=True, editable=False, help_text="First characters only."
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    current_version = models.CharField(max_length=64, blank=True, db_index=True)
    agent_version = models.CharField(max_length=64, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering: ClassVar = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def set_api_key(self, key: str) -> None:
        """Store only the hash (and a short hint) of ``key``."""
        self.api_key_hash = hash_api_key(key)
        self.api_key_hint = key[:10]


class ReleaseQuerySet(models.QuerySet["Release"]):
    def listed(self) -> ReleaseQuerySet:
        """Releases that may appear in an index at all (before channel and rollout)."""
        return self.filter(enabled=True, paused_at__isnull=True, release_signed=True)

    def of(self, product: str) -> ReleaseQuerySet:
        return self.filter(product=product)


class Release(models.Model):
    """One signed CLMS release as published by vendor staff.

    Rollout state: ``enabled`` and ``paused_at``. Allowed moves: enabled ->
    disabled and back; enabled -> paused (auto-pause or staff) -> resumed
    (``paused_at`` cleared) or disabled. A paused or disabled release leaves
    every index.
    """

    # "clms" (VENDOR_PRODUCT) or the agent itself (VENDOR_AGENT_PRODUCT): each
    # product has its own signed index and its own versions.
    product = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    channel = models.CharField(
        max_length=10, choices=Channel.choices, default=Channel.STABLE
    )
    changelog = models.TextField(blank=True, help_text="Markdown.")
    critical = models.BooleanField(default=False)
    force_after = models.DateTimeField(null=True, blank=True)
    min_version = models.CharField(max_length=64, blank=True)
    enabled = models.BooleanField(default=True)
    rollout_percent = models.PositiveSmallIntegerField(default=100)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)
    # A critical release is never paused by reports: staff are told once instead.
    failure_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    images = models.JSONField(default=list, help_text="[{service, reference}]")
    bundle_file = models.CharField(max_length=500, blank=True)
    bundle_sha256 = models.CharField(max_length=64, blank=True)
    bundle_size = models.BigIntegerField(null=True, blank=True)
    migration = models.JSONField(null=True, blank=True)
    health_check = models.JSONField(default=dict)
    # A compose release (manifest format 2): the project schools run, the
    # settings it asks them for, and (a source release) what they build.
    compose = models.JSONField(null=True, blank=True)
    settings = models.JSONField(default=list, blank=True)
    source = models.JSONField(null=True, blank=True)
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.CharField(max_length=150, blank=True)
    manifest_json = models.TextField(editable=False)
    manifest_sha256 = models.CharField(max_length=64, editable=False)
    # Every signature over the manifest, armored blocks one after another: the
    # online key's, and those of release managers attached by ``sign_release``.
    manifest_signature = models.TextField(editable=False)
    signed_at = models.DateTimeField(default=timezone.now, editable=False)
    # The signatures meet the current root's release threshold; only then is
    # the release listed (``vendor_server.roots``).
    release_signed = models.BooleanField(default=True, editable=False)

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-published_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product", "version"], name="release_version_per_product"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.version}"

    @property
    def semver(self) -> semver.Version:
        return semver.Version.parse(self.version)

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest_json.encode("utf-8")


class IndexState(models.Model):
    """The single row holding the index sequence and when it was last signed.

    ``sequence`` grows by one on every change that alters what any school sees;
    ``expires`` is the expiry written into every index signed at this sequence.
    ``epoch`` names this database's run of sequences in the shared cache: a new
    database (or one restored, ``indexing.resume_after_restore``) never serves
    another's cached sequence or signed documents.
    """

    sequence = models.PositiveBigIntegerField(default=1)
    generated_at = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField(default=timezone.now)
    epoch = models.CharField(max_length=32, default=new_epoch, editable=False)

    def __str__(self) -> str:
        return f"index #{self.sequence}"


class RootVersion(models.Model):
    """One published version of the root of trust, with its signatures (offline keys)."""

    version = models.PositiveIntegerField(unique=True)
    root_json = models.TextField()
    signature = models.TextField()
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering: ClassVar = ["version"]

    def __str__(self) -> str:
        return f"root {self.version}"


class SignedIndex(models.Model):
    """A signed index for one set of visible releases at one sequence (a cache)."""

    sequence = models.PositiveBigIntegerField()
    release_key = models.CharField(max_length=64, help_text="sha256 of the release ids")
    index_json = models.TextField()
    signature = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["sequence", "release_key"], name="signed_index_unique"
            )
        ]

    def __str__(self) -> str:
        return f"index #{self.sequence} ({self.release_key[:8]})"


class CheckIn(models.Model):
    """One school's poll, as flushed from the check-in buffer (one row per minute)."""

    school = models.ForeignKey(
        School, on_delete=models.CASCADE, related_name="checkins"
    )
    seen_at = models.DateTimeField(db_index=True)
    clms_version = models.CharField(max_length=64, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    requests = models.PositiveIntegerField(default=1)

    class Meta:
        ordering: ClassVar = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.school} at {self.seen_at:%Y-%m-%d %H:%M}"


class Outcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


class RunKind(models.TextChoices):
    """What the school's run did: installed a release, or went back by hand."""

    UPDATE = "update", "Update"
    ROLLBACK = "rollback", "Manual rollback"


FAILURE_OUTCOMES = (Outcome.FAILED, Outcome.ROLLED_BACK)


def default_product() -> str:
    """The vendor's default product (CLMS), for reports that do not name one."""
    return str(settings.VENDOR_PRODUCT)


def utc_today() -> date:
    """Today's date in UTC (the day reports are grouped by)."""
    return timezone.now().astimezone(UTC).date()


class UpdateReport(models.Model):
    """What a school's agent reported after trying to install a release."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="reports")
    release = models.ForeignKey(
        Release,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
    )
    # What was updated: CLMS (VENDOR_PRODUCT) or the agent (VENDOR_AGENT_PRODUCT).
    product = models.CharField(max_length=64, default=default_product)
    # Whether it counts for the release's auto-pause: the school could see the
    # release when it reported (a report about any other release is kept, unweighed).
    counted = models.BooleanField(default=True)
    run_id = models.BigIntegerField()
    from_version = models.CharField(max_length=64)
    to_version = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    # A manual rollback's release is the one the school left (``from_version``);
    # it never counts as an install, nor for the rollout's failure rate.
    kind = models.CharField(
        max_length=10, choices=RunKind.choices, default=RunKind.UPDATE
    )
    duration_seconds = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=100, blank=True)
    log_excerpt = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The UTC day of ``received_at``, kept as a column so adoption charts group by
    # a plain indexed value instead of a per-row date function.
    received_on = models.DateField(default=utc_today)

    class Meta:
        ordering: ClassVar = ["-received_at"]
        indexes: ClassVar = [
            models.Index(fields=["release", "outcome"]),
            models.Index(fields=["product", "to_version", "outcome"]),
            models.Index(fields=["outcome", "to_version", "received_on"]),
        ]

    def __str__(self) -> str:
        return f"{self.school} {self.from_version} -> {self.to_version}: {self.outcome}"


class ReportTally(models.Model):
    """How many reports there are per product, kind, release, outcome and UTC day.

    Kept by ``reporting.record_report`` in the report's own transaction, so the
    analytics page reads a few thousand rows instead of aggregating millions of
    reports. ``version`` is the release a report is filed under: the one
    installed, or for a manual rollback the one left.
    """

    product = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=RunKind.choices)
    version = models.CharField(max_length=64)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    day = models.DateField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product", "kind", "version", "outcome", "day"],
                name="one_tally_per_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.version} {self.kind} {self.outcome} {self.day}: {self.count}"


class FleetAnalytics(School):
    """No data of its own: puts "Fleet analytics" on the admin index (links the page)."""

    class Meta:
        proxy = True
        verbose_name = "fleet analytics"
        verbose_name_plural = "fleet analytics"
