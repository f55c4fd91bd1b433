"""Serializers of the updates API: shapes of answers and validation of requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from clms_updates.models import AuditEntry
from updates import scheduling
from updates.models import (
    AgentState,
    AvailableRelease,
    BlackoutPeriod,
    MaintenanceWindow,
    UpdateCheck,
    UpdateRun,
)
from updates.next_action import Situation


class ReleaseSerializer(serializers.ModelSerializer):
    """A verified release, with its changelog."""

    class Meta:
        model = AvailableRelease
        fields = [
            "version",
            "channel",
            "critical",
            "force_after",
            "min_version",
            "changelog",
            "released_at",
            "signer_fingerprint",
            "source",
            "index_sequence",
            "verified_at",
            "notified_at",
            "rolled_back",
            # Set when the vendor withdrew the release: it is no longer offered.
            "withdrawn_at",
        ]


class AgentStateSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentState
        fields = [
            "installed_version",
            "highest_sequence",
            "last_check_at",
            "last_good_check_at",
            "offline",
            "offline_reason",
            "offline_since",
            "slow_down_until",
        ]


class CheckSerializer(serializers.ModelSerializer):
    """One check and its reason; ``release`` is the verified release it found."""

    release = serializers.SerializerMethodField()

    class Meta:
        model = UpdateCheck
        fields = [
            "id",
            "started_at",
            "finished_at",
            "trigger",
            "source",
            "outcome",
            "reason",
            "index_sequence",
            "found_version",
            "release",
        ]

    def get_release(self, check: UpdateCheck) -> dict[str, Any] | None:
        release = AvailableRelease.objects.filter(version=check.found_version).first()
        return (
            ReleaseSerializer(release).data if release and check.found_version else None
        )


class NextActionSerializer(serializers.Serializer):
    """Where the installation stands and the one step that moves it on."""

    situation = serializers.ChoiceField(choices=[str(s) for s in Situation])
    title = serializers.CharField()
    sentence = serializers.CharField()
    action = serializers.CharField(help_text="The button's label on the pages.")
    url = serializers.CharField(help_text="The page (GET) or form (POST) taking it.")
    method = serializers.ChoiceField(choices=["GET", "POST"])
    version = serializers.CharField(allow_null=True)
    run = serializers.CharField(allow_null=True)


class LatestSerializer(serializers.Serializer):
    """What the agent knows now: installed version, online state, the release
    offered next (a rolled-back one only as a retry), and the next step."""

    agent = AgentStateSerializer()
    release = ReleaseSerializer(allow_null=True)
    last_check = CheckSerializer(allow_null=True)
    next_action = NextActionSerializer()


class RunSerializer(serializers.ModelSerializer):
    """An update or rollback run and where it is."""

    requested_by = serializers.CharField(
        source="requested_by.username", default="", read_only=True
    )

    class Meta:
        model = UpdateRun
        fields = [
            "id",
            "kind",
            "state",
            "from_version",
            "to_version",
            "created_at",
            "scheduled_for",
            "requested_by",
            "forced",
            "started_at",
            "finished_at",
            "current_step",
            "percent",
            "message",
            "eta_seconds",
            "error_code",
            "error_message",
            "attempts",
            "next_retry_at",
            "backup_id",
            # Each pipeline step with its status, start and end time.
            "steps",
            "reported_at",
        ]


class SchoolDateTimeField(serializers.DateTimeField):
    """A date-time that stays naive when given without an offset (school time)."""

    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_naive(value):
            return value
        return super().enforce_timezone(value)


class ScheduleSerializer(serializers.Serializer):
    """Schedule a verified release at a time or in the next maintenance window.

    ``at`` with an offset (``2026-12-01T22:30:00+00:00``) is taken as given; a
    time without an offset is school time (``UPDATES_SCHOOL_TIME_ZONE``).
    Every rule is checked by the action; this only parses.
    """

    version = serializers.CharField(max_length=64)
    at = SchoolDateTimeField(
        required=False,
        allow_null=True,
        help_text="When to run: with an offset it is taken as given; without one it "
        "is school time (UPDATES_SCHOOL_TIME_ZONE).",
    )
    next_window = serializers.BooleanField(default=False)
    force = serializers.BooleanField(
        default=False,
        help_text="Admin override (audited): allow a time outside the maintenance "
        "windows, or retry a version that was rolled back.",
    )

    def validate_at(self, value: datetime | None) -> datetime | None:
        if value is None or not timezone.is_naive(value):
            return value
        try:
            return scheduling.local_to_utc(value)
        except scheduling.SchedulingError as e:
            raise serializers.ValidationError(str(e)) from None


class UpdateNowSerializer(serializers.Serializer):
    """Start a verified release now (outside a window that is an audited override)."""

    version = serializers.CharField(max_length=64)
    force = serializers.BooleanField(
        default=False,
        help_text="Admin override (audited): retry a version that was rolled back.",
    )


class RollbackSerializer(serializers.Serializer):
    """Roll back to the previous version now, saying why (kept in the audit log)."""

    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class WindowSerializer(serializers.ModelSerializer):
    """A maintenance window in school time; weekdays 0 (Monday) to 6 (Sunday)."""

    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), allow_empty=False
    )

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "weekdays", "start", "end", "enabled"]
        read_only_fields = ["id"]

    def validate_weekdays(self, value: list[int]) -> list[int]:
        return sorted(set(value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["start"] == attrs["end"]:
            raise serializers.ValidationError(
                {"end": "a window needs a length: end must differ from start"}
            )
        return attrs


class BlackoutSerializer(serializers.ModelSerializer):
    """Dates (inclusive, school time) on which no update starts."""

    class Meta:
        model = BlackoutPeriod
        fields = ["id", "start_date", "end_date", "reason"]
        read_only_fields = ["id"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end_date"] < attrs["start_date"]:
            raise serializers.ValidationError(
                {"end_date": "the end date is before the start date"}
            )
        return attrs


class AuditSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "username",
            "action",
            "target",
            "detail",
            "address",
        ]


class SettingSerializer(serializers.Serializer):
    """A setting a release asks the school for; a secret's value is never shown."""

    name = serializers.CharField(source="setting.name")
    description = serializers.CharField(source="setting.description")
    default = serializers.CharField(source="setting.default", allow_null=True)
    is_required = serializers.BooleanField(source="setting.required")
    secret = serializers.BooleanField(source="setting.secret")
    is_set = serializers.BooleanField()
    value = serializers.CharField(source="shown", help_text="Empty for a secret.")
    missing = serializers.BooleanField(
        help_text="Required and not given: an update needing it waits."
    )


class SettingsSerializer(serializers.Serializer):
    """The settings, where they are kept, and the school's own override file."""

    settings = SettingSerializer(many=True, source="states")
    env_file = serializers.CharField()
    override_file = serializers.CharField()
    override_services = serializers.ListField(
        child=serializers.CharField(),
        help_text="The services the school's override file changes (empty: none).",
    )
    problem = serializers.CharField()


class SettingValuesSerializer(serializers.Serializer):
    """New values: ``{"values": {"NAME": "value", ...}}``."""

    values = serializers.DictField(
        child=serializers.CharField(max_length=4096, allow_blank=True),
        allow_empty=False,
    )


class AgentReleaseSerializer(serializers.Serializer):
    version = serializers.CharField()
    channel = serializers.CharField()
    critical = serializers.BooleanField()
    changelog = serializers.CharField()
    rolled_back = serializers.BooleanField()


class AgentUpdateSerializer(serializers.Serializer):
    """The agent itself: the version running, the release offered, what waits."""

    running = serializers.CharField(help_text="The agent version that answers.")
    release = AgentReleaseSerializer(allow_null=True)
    pin = serializers.CharField(help_text="UPDATES_AGENT_PIN (empty: not pinned).")
    pending = serializers.CharField(
        help_text="An agent update that waits (for a run or backup, or the window)."
    )
    not_before = serializers.DateTimeField(allow_null=True)


class AgentUpdateRequestSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=64)
