"""Backups of the CLMS database: one row per backup file and its manifest."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from clms_updates.notify import notify
from clms_updates.progress import TrackedProgress
from clms_updates.statemachine import StateMachine


class Backup(TrackedProgress):
    """A compressed dump of the CLMS database plus its manifest.

    Status transitions (``BACKUP_MACHINE``; anything else raises ``InvalidTransition``)::

        pending  -> running -> created -> verifying -> verified
        verified -> verifying            (verify again)
        verifying -> created             (verification interrupted by a crash)
        pending | running | created | verifying | verified -> failed

    Only a ``verified`` backup may be restored or used by a rollback. A failed
    backup never becomes good again: make a new one.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Backing up"
        CREATED = "created", "Created, not verified"
        VERIFYING = "verifying", "Verifying"
        VERIFIED = "verified", "Verified"
        FAILED = "failed", "Failed"

    # States in which no process is working on the row.
    SETTLED_STATUSES = (Status.CREATED, Status.VERIFIED, Status.FAILED)
    # States in which a process is (or was, before a crash) working on the row.
    BUSY_STATUSES = (Status.PENDING, Status.RUNNING, Status.VERIFYING)

    name = models.CharField(max_length=80, unique=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    reason = models.CharField(max_length=200, blank=True)
    # A label such as "update-run:12": retention never deletes a held backup.
    hold = models.CharField(max_length=100, blank=True, db_index=True)
    engine = models.CharField(max_length=20, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    clms_version = models.CharField(max_length=50, blank=True)
    server_version = models.CharField(max_length=50, blank=True)
    # The whole manifest as written beside the file (row counts, tool versions...).
    manifest = models.JSONField(default=dict, blank=True)
    # Extra copies: [{"target": "s3", "location": "s3://bucket/key", "at": iso}].
    copies = models.JSONField(default=list, blank=True)
    failure_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_usable(self) -> bool:
        """True when the backup may be restored (and so relied on by a rollback)."""
        return self.status == self.Status.VERIFIED

    @property
    def locations(self) -> list[str]:
        """Where each copy of the file lives, the primary first."""
        primary = self.manifest.get("location", "") if self.manifest else ""
        return [
            p for p in [primary, *(c.get("location", "") for c in self.copies)] if p
        ]

    def start(self) -> None:
        """pending -> running (the dump begins)."""
        self.started_at = timezone.now()
        BACKUP_MACHINE.move(
            self,
            self.Status.RUNNING,
            "Starting the backup",
            fields=("started_at",),
            step="dump",
            percent=0,
        )

    def mark_created(
        self,
        message: str = "The backup file is complete",
        *,
        duration_seconds: float | None = None,
        fields: tuple[str, ...] = (),
    ) -> None:
        """running -> created (the file is complete and renamed into place)."""
        self.finished_at = timezone.now()
        if duration_seconds is not None:
            self.duration_seconds = duration_seconds
        elif self.started_at:
            self.duration_seconds = (self.finished_at - self.started_at).total_seconds()
        BACKUP_MACHINE.move(
            self,
            self.Status.CREATED,
            message,
            fields=(*fields, "finished_at", "duration_seconds"),
            step="created",
            percent=100,
        )

    def start_verify(self) -> None:
        """created | verified -> verifying."""
        BACKUP_MACHINE.move(
            self,
            self.Status.VERIFYING,
            "Checking the file's size and checksum",
            step="verify",
            percent=5,
        )

    def mark_verified(self) -> None:
        """verifying -> verified."""
        self.verified_at = timezone.now()
        BACKUP_MACHINE.move(
            self,
            self.Status.VERIFIED,
            "Verified: the backup restores with the same row counts",
            fields=("verified_at",),
            step="verified",
            percent=100,
        )

    def interrupt_verify(self) -> None:
        """verifying -> created: a crash stopped verification, not the backup."""
        BACKUP_MACHINE.move(
            self,
            self.Status.CREATED,
            "Verification was interrupted; verify it again.",
        )

    def fail(self, reason: str) -> None:
        """Any non-failed state -> failed, recording why. Never usable again."""
        self.failure_reason = reason
        self.verified_at = None
        if self.finished_at is None:
            self.finished_at = timezone.now()
        BACKUP_MACHINE.move(
            self,
            self.Status.FAILED,
            reason,
            fields=("failure_reason", "verified_at", "finished_at"),
            step="failed",
        )
        transaction.on_commit(
            lambda: notify(
                "backup_failed",
                {"backup": self},
                key=f"backup {self.pk}",
                email=False,
            )
        )


BACKUP_MACHINE = StateMachine(
    "status",
    {
        Backup.Status.RUNNING: (Backup.Status.PENDING,),
        Backup.Status.CREATED: (Backup.Status.RUNNING, Backup.Status.VERIFYING),
        Backup.Status.VERIFYING: (Backup.Status.CREATED, Backup.Status.VERIFIED),
        Backup.Status.VERIFIED: (Backup.Status.VERIFYING,),
        Backup.Status.FAILED: (
            Backup.Status.PENDING,
            Backup.Status.RUNNING,
            Backup.Status.CREATED,
            Backup.Status.VERIFYING,
            Backup.Status.VERIFIED,
        ),
    },
    terminal=(Backup.Status.FAILED,),
)
