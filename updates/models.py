"""The school agent's records: what it runs, what it found, when it may update."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from clms_updates import progress
from clms_updates.manifest import ReleaseManifest, parse_manifest
from clms_updates.statemachine import StateMachine
from updates.school_time import format_school_time


class TrustedRoot(models.Model):
    """One accepted version of the vendor's root of trust (``clms_updates.manifest.roles``).

    The chain is kept whole and walked again from the pinned keys before use
    (``updates.trust.current_root``), so a row changed in the database is refused.
    """

    version = models.PositiveIntegerField(unique=True)
    root_json = models.TextField()
    signature = models.TextField()
    source = models.CharField(max_length=40, blank=True)
    accepted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"root {self.version}"


class AgentState(models.Model):
    """The one row of agent-wide state: installed version, replay guard, online state.

    ``highest_sequence`` is the replay guard: the highest index sequence ever
    verified. ``last_good_check_at`` is kept while offline so the admin sees how
    old what the agent knows is.
    """

    installed_version = models.CharField(max_length=64)
    highest_sequence = models.PositiveBigIntegerField(default=0)
    # Per source (and "agent:" source for the agent's own index): the sequence
    # and sha256 of the last index accepted, to refuse equivocation.
    index_seen = models.JSONField(default=dict, blank=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_good_check_at = models.DateTimeField(null=True, blank=True)
    offline = models.BooleanField(default=False)
    offline_reason = models.TextField(blank=True)
    offline_since = models.DateTimeField(null=True, blank=True)
    # Source name -> ISO time (UTC) before which periodic checks do not ask it
    # again: the source answered 429 with Retry-After.
    slow_down_until = models.JSONField(default=dict, blank=True)
    # How the running stack differs from its compose project (hand edits), as
    # found after the last run or check; empty when it matches.
    # The highest sequence seen in the agent product's own index (replay).
    agent_index_sequence = models.PositiveBigIntegerField(default=0)
    # An agent update asked for while another run was active (or a critical
    # one planned for the next window): started once nothing is in the way.
    agent_update_pending = models.CharField(max_length=64, blank=True)
    agent_update_not_before = models.DateTimeField(null=True, blank=True)
    agent_update_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    drift = models.JSONField(default=list, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    # Volumes of services a release removed (never deleted): name ->
    # {"left_by": the version that had them, "at": when}.
    left_volumes = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "agent state"

    def __str__(self) -> str:
        return f"CLMS {self.installed_version}"

    @classmethod
    def load(cls) -> AgentState:
        """The single row, created from ``CLMS_INSTALLED_VERSION`` on first use."""
        state, _ = cls.objects.get_or_create(
            pk=1, defaults={"installed_version": settings.CLMS_INSTALLED_VERSION}
        )
        return state

    @classmethod
    def record_installed(cls, version: str) -> None:
        """The installation now runs ``version`` (after an update or a rollback)."""
        cls.load()
        cls.objects.filter(pk=1).update(installed_version=version)


class UpdateCheck(models.Model):
    """One check for updates: where it asked, what it found or why it refused."""

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        REFUSED = "refused", "Refused"
        OFFLINE = "offline", "Offline"
        ERROR = "error", "Error"

    class Trigger(models.TextChoices):
        PERIODIC = "periodic", "Periodic"
        MANUAL = "manual", "Check now"

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(
        max_length=16, choices=Trigger.choices, default=Trigger.MANUAL
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(max_length=32, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    index_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    found_version = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"check {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"


class AvailableRelease(models.Model):
    """A release whose index entry and manifest were both verified against pinned keys.

    Only ``checking`` creates these, and only after every rule of the trust model
    passed; the manifest's canonical bytes and signature are kept so the pipeline
    can verify them again before applying.
    """

    version = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=16)
    critical = models.BooleanField(default=False)
    force_after = models.DateTimeField(null=True, blank=True)
    min_version = models.CharField(max_length=64, blank=True)
    changelog = models.TextField(blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    # The canonical manifest bytes (UTF-8 text) exactly as signed.
    manifest_text = models.TextField()
    signature = models.TextField()
    signer_fingerprint = models.CharField(max_length=64)
    source = models.CharField(max_length=32)
    index_sequence = models.PositiveBigIntegerField()
    verified_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)
    # A version that was rolled back is not retried automatically.
    rolled_back = models.BooleanField(default=False)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    # Set when a verified, fresh vendor index no longer lists the release (the
    # vendor disabled it or paused its rollout); cleared if it is listed again.
    # A withdrawn release is kept (runs refer to it) but never offered.
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-verified_at", "-id"]

    def __str__(self) -> str:
        return f"CLMS {self.version}"

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest_text.encode("utf-8")

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def manifest(self) -> ReleaseManifest:
        """The parsed manifest (it was verified when stored)."""
        return parse_manifest(self.manifest_bytes)


class AgentRelease(models.Model):
    """A verified release of CLMS Updates itself (the agent), offered beside CLMS's.

    Checked like a CLMS release (pinned keys, its own signed index of the
    agent's product, freshness); installed by ``updates.selfupdate``.
    """

    version = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=16)
    critical = models.BooleanField(default=False)
    force_after = models.DateTimeField(null=True, blank=True)
    changelog = models.TextField(blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    manifest_text = models.TextField()
    signature = models.TextField()
    signer_fingerprint = models.CharField(max_length=64)
    index_sequence = models.PositiveBigIntegerField()
    verified_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    rolled_back = models.BooleanField(default=False)

    class Meta:
        ordering = ["-verified_at"]

    def __str__(self) -> str:
        return f"CLMS Updates {self.version}"

    def manifest(self) -> ReleaseManifest:
        return parse_manifest(self.manifest_text.encode("utf-8"))


class MaintenanceWindow(models.Model):
    """When updates may run: on these weekdays, from ``start`` to ``end`` local time.

    Times are wall-clock times in ``UPDATES_SCHOOL_TIME_ZONE``. An ``end`` at or
    before ``start`` means the window crosses midnight and ends the next day
    (Mon 22:00-05:00 ends on Tuesday at 05:00). Weekdays are 0 (Monday) to 6.
    """

    weekdays = models.JSONField(default=list)
    start = models.TimeField()
    end = models.TimeField()
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["start", "id"]

    def __str__(self) -> str:
        days = ",".join(str(d) for d in self.weekdays)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


class BlackoutPeriod(models.Model):
    """Dates (inclusive, school time zone) on which no update starts: exams, events."""

    start_date = models.DateField()
    end_date = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["start_date", "id"]

    def __str__(self) -> str:
        return f"{self.start_date}..{self.end_date} {self.reason}"


class UpdateRun(progress.TrackedProgress):
    """One update (or rollback) of the CLMS installation, from scheduled to done.

    Transitions (each a method that refuses any other move)::

        scheduled -> running            claim()  (conditional UPDATE, one worker wins)
        scheduled | waiting -> cancelled  cancel()
        running   -> waiting            wait_for_input()  (the release needs settings)
        waiting   -> scheduled          resume_after_input()
        running   -> scheduled          defer_retry()  (transient failure, retried later)
        running   -> succeeded          succeed()
        running   -> rolling_back       start_rollback()
        rolling_back -> rolled_back     finish_rollback()
        running | rolling_back -> failed  fail()

    Only one run may be active (scheduled, waiting, running or rolling back) at a time:
    ``active_slot`` is True for the active one and NULL otherwise, under a unique
    constraint, so the database refuses a second one even under a race.
    """

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        WAITING = "waiting", "Needs your input"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        ROLLING_BACK = "rolling_back", "Rolling back"
        ROLLED_BACK = "rolled_back", "Rolled back"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Kind(models.TextChoices):
        UPDATE = "update", "Update"
        ROLLBACK = "rollback", "Rollback"
        # CLMS Updates updating itself (updates.selfupdate); to/from_version
        # are the agent's versions.
        AGENT = "agent", "Agent update"

    TERMINAL_STATES = frozenset(
        {State.SUCCEEDED, State.ROLLED_BACK, State.FAILED, State.CANCELLED}
    )

    release = models.ForeignKey(
        AvailableRelease,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
    )
    agent_release = models.ForeignKey(
        "AgentRelease",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.UPDATE)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.SCHEDULED, db_index=True
    )
    active_slot = models.BooleanField(null=True, default=True, editable=False)
    from_version = models.CharField(max_length=64)
    to_version = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    scheduled_for = models.DateTimeField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    forced = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    # The backup taken before applying (backups.Backup id; no FK across apps).
    backup_id = models.BigIntegerField(null=True, blank=True)

    # The pipeline's record of each step, in the order they ran: name, status
    # (running, done, skipped, failed), started_at, finished_at, seconds, detail.
    steps = models.JSONField(default=list, blank=True)
    # What a later worker needs to finish or undo the run: the old containers'
    # images, the env file's old values, whether the migration started.
    checkpoint = models.JSONField(default=dict, blank=True)
    # The lease: which worker drives the run and when it last said so. A run
    # whose heartbeat is older than UPDATES_RUN_LEASE_SECONDS lost its worker.
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the vendor acknowledged the outcome report (null: not yet).
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["active_slot"], name="updates_one_active_run"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_version} -> {self.to_version} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL_STATES

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The slot follows the state, whoever writes the row.
        self.active_slot = None if self.state in self.TERMINAL_STATES else True
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "state" in update_fields:
            kwargs["update_fields"] = {*update_fields, "active_slot"}
        super().save(*args, **kwargs)

    @classmethod
    def create_active(cls, **fields: Any) -> UpdateRun:
        """Create a scheduled run, or raise ``IntegrityError`` if one is active."""
        with transaction.atomic():
            return cls.objects.create(**fields)

    def publish_scheduled(self) -> None:
        """Record on the run (and tell its page) when it is planned to start."""
        progress.publish(
            self, f"Scheduled for {format_school_time(self.scheduled_for)}"
        )

    @classmethod
    def active(cls) -> UpdateRun | None:
        """The run that is scheduled, running or rolling back, if any."""
        return cls.objects.filter(active_slot=True).first()

    @classmethod
    def claim(cls, run_id: int, *, now: datetime | None = None) -> UpdateRun | None:
        """Take a scheduled run for this worker; ``None`` if another took it or it ended.

        1. One conditional ``UPDATE … WHERE state='scheduled'``: of two workers
           racing, exactly one changes a row.
        2. The winner reloads the row and owns the run from here on.
        """
        now = now or timezone.now()
        claimed = RUN_MACHINE.claim(
            cls,
            run_id,
            cls.State.RUNNING,
            started_at=now,
            attempts=F("attempts") + 1,
            next_retry_at=None,
        )
        if not claimed:
            return None
        run = cls.objects.get(pk=run_id)
        progress.publish(run, f"Run started (attempt {run.attempts})", percent=0)
        return run

    @classmethod
    def take_over(
        cls, run_id: int, *, worker: str, stale_before: datetime
    ) -> UpdateRun | None:
        """Adopt a running or rolling-back run whose worker stopped beating.

        1. One conditional ``UPDATE … WHERE`` the heartbeat is older than
           ``stale_before`` (or missing on a run started before it): of two
           workers starting together, exactly one changes the row.
        2. The winner reloads the row and drives it from here on.
        ``None`` when the run's worker is alive, or the run is over.
        """
        stale = models.Q(heartbeat_at__lt=stale_before) | models.Q(
            heartbeat_at__isnull=True, started_at__lt=stale_before
        )
        taken = (
            cls.objects.filter(stale, pk=run_id)
            .filter(state__in=(cls.State.RUNNING, cls.State.ROLLING_BACK))
            .update(worker=worker, heartbeat_at=timezone.now())
        )
        if not taken:
            return None
        return cls.objects.get(pk=run_id)

    def _move(
        self, to: str, message: str, *, extra_fields: tuple[str, ...] = ()
    ) -> None:
        fields: tuple[str, ...] = ("active_slot", *extra_fields)
        if to in self.TERMINAL_STATES:
            self.finished_at = timezone.now()
            fields = (*fields, "finished_at")
        self.active_slot = None if to in self.TERMINAL_STATES else True
        RUN_MACHINE.move(self, to, message, fields=fields)

    def cancel(self, reason: str = "", *, code: str = "cancelled") -> None:
        """scheduled -> cancelled: it will never run; ``reason`` when not an admin's."""
        extra: tuple[str, ...] = ()
        if reason:
            self.error_code, self.error_message = code[:64], reason
            extra = ("error_code", "error_message")
        self._move(
            self.State.CANCELLED,
            f"Run cancelled: {reason}" if reason else "Run cancelled",
            extra_fields=extra,
        )

    def wait_for_input(self, message: str) -> None:
        """running -> waiting: the release needs settings the school has not given."""
        self.error_code, self.error_message = "needs_input", message
        self._move(
            self.State.WAITING, message, extra_fields=("error_code", "error_message")
        )

    def resume_after_input(self, at: datetime) -> None:
        """waiting -> scheduled at ``at``, once the settings are given."""
        self.scheduled_for = at
        self.error_code = self.error_message = ""
        self._move(
            self.State.SCHEDULED,
            f"Settings given; scheduled for {format_school_time(at)}",
            extra_fields=("scheduled_for", "error_code", "error_message"),
        )

    def succeed(self) -> None:
        """running -> succeeded."""
        self._move(self.State.SUCCEEDED, "Run succeeded")

    def start_rollback(self, reason: str) -> None:
        """running -> rolling_back."""
        self._move(self.State.ROLLING_BACK, f"Rolling back: {reason}")

    def finish_rollback(self) -> None:
        """rolling_back -> rolled_back; the release is not retried without an admin."""
        self.percent = 100
        self._move(self.State.ROLLED_BACK, "Rolled back", extra_fields=("percent",))
        if self.release_id and self.kind == self.Kind.UPDATE:
            AvailableRelease.objects.filter(pk=self.release_id).update(
                rolled_back=True, rolled_back_at=self.finished_at
            )

    def fail(self, error_code: str, error_message: str) -> None:
        """running | rolling_back -> failed, with a code and a message for the admin."""
        self.error_code = error_code[:64]
        self.error_message = error_message
        self._move(
            self.State.FAILED,
            f"Failed ({error_code}): {error_message}",
            extra_fields=("error_code", "error_message"),
        )

    def defer_retry(self, next_retry_at: datetime, reason: str) -> None:
        """running -> scheduled again after a transient failure, retried at ``next_retry_at``."""
        self.next_retry_at = next_retry_at
        self.error_message = reason
        self._move(
            self.State.SCHEDULED,
            f"Transient failure, retrying at {format_school_time(next_retry_at)}: "
            f"{reason}",
            extra_fields=("next_retry_at", "error_message"),
        )


RUN_MACHINE = StateMachine(
    "state",
    {
        UpdateRun.State.RUNNING: (UpdateRun.State.SCHEDULED,),
        UpdateRun.State.CANCELLED: (UpdateRun.State.SCHEDULED, UpdateRun.State.WAITING),
        UpdateRun.State.WAITING: (UpdateRun.State.RUNNING,),
        UpdateRun.State.SCHEDULED: (UpdateRun.State.RUNNING, UpdateRun.State.WAITING),
        UpdateRun.State.SUCCEEDED: (UpdateRun.State.RUNNING,),
        UpdateRun.State.ROLLING_BACK: (UpdateRun.State.RUNNING,),
        UpdateRun.State.ROLLED_BACK: (UpdateRun.State.ROLLING_BACK,),
        UpdateRun.State.FAILED: (UpdateRun.State.RUNNING, UpdateRun.State.ROLLING_BACK),
    },
    terminal=UpdateRun.TERMINAL_STATES,
)


# ---------------------------------------------------------------------------
# Critical deadlines and offline bundles (enforcement, offline)
# ---------------------------------------------------------------------------


class EmergencyOverride(models.Model):
    """A school admin's time-limited lift of the critical-update block, with a reason.

    An override is active from ``created_at`` until ``expires_at`` unless revoked.
    ``expiry_recorded_at`` marks that the expiry was noticed and audited (at
    start-up or by the periodic tick), so it is audited once.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="emergency_overrides",
    )
    username = models.CharField(max_length=150)
    reason = models.TextField()
    release_version = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)
    expiry_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"override by {self.username} until {self.expires_at:%Y-%m-%d %H:%M}"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.created_at <= now < self.expires_at


class DeadlineWarning(models.Model):
    """One deadline warning email sent (or skipped) for a critical release.

    The unique pair (version, hours_before) makes each warning go out once even
    when two ticks race: the second insert fails.
    """

    release_version = models.CharField(max_length=64)
    hours_before = models.PositiveIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)
    skipped = models.BooleanField(default=False)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["release_version", "hours_before"],
                name="updates_one_warning_per_threshold",
            )
        ]

    def __str__(self) -> str:
        return f"{self.release_version}: {self.hours_before} h warning"


class OfflineBundle(models.Model):
    """A bundle file found in the offline folder, and what became of it.

    States::

        found -> verified -> applied    (loaded, then installed by the pipeline)
        found -> refused                (moved to quarantine with a reason file)
    """

    class State(models.TextChoices):
        FOUND = "found", "Found"
        VERIFIED = "verified", "Verified"
        REFUSED = "refused", "Refused"
        APPLIED = "applied", "Applied"

    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField(default=0)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.FOUND, db_index=True
    )
    reason = models.TextField(blank=True)
    version = models.CharField(max_length=64, blank=True)
    found_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Where the file is now (the offline folder, or quarantine when refused).
    path = models.CharField(max_length=1000, blank=True)
    # Image reference (repo@sha256:…) -> local image id it was loaded as (a
    # source release's base images included).
    images = models.JSONField(default=dict, blank=True)
    # A source release: the verified source tree kept for the build.
    source_dir = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-found_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sha256", "file_name"], name="updates_bundle_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.state})"


class BannerDismissal(models.Model):
    """One user hid the banner of one optional release, on every session and device.

    Only optional releases are recorded (``record`` refuses a critical one), and
    a dismissal names one release: a newer release has no row, so it shows again.
    The unique pair makes a second click, or two clicks racing, one row.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="banner_dismissals",
    )
    release = models.ForeignKey(
        AvailableRelease, on_delete=models.CASCADE, related_name="dismissals"
    )
    dismissed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-dismissed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "release"], name="updates_dismiss_banner_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} hid CLMS {self.release.version}"

    @classmethod
    def record(cls, user: Any, release: AvailableRelease) -> BannerDismissal:
        """Hide ``release``'s banner for ``user`` (the action refuses critical ones)."""
        dismissal, _ = cls.objects.get_or_create(user=user, release=release)
        return dismissal

    @classmethod
    def hides(cls, user: Any, release: AvailableRelease) -> bool:
        """Whether ``user`` hid ``release``'s banner (never true of a critical one)."""
        if release.critical or not getattr(user, "is_authenticated", False):
            return False
        return cls.objects.filter(user=user, release=release).exists()
