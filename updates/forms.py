"""Forms of the school pages: they validate what the admin asked, like the API does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone

from updates import presenting, scheduling
from updates.models import AgentState, AvailableRelease, UpdateRun


class VersionField(forms.ModelChoiceField):
    """A verified available release, named by its version."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            queryset=AvailableRelease.objects.all(),
            to_field_name="version",
            error_messages={
                "invalid_choice": "This version is not a verified available release; "
                "press “Check now” and pick a version it found.",
                "required": "Choose the version to install.",
            },
            **kwargs,
        )


def _refuse_unusable_release(
    form: forms.Form, release: AvailableRelease | None, *, force: bool
) -> None:
    if release is None:
        return
    if release.version == AgentState.load().installed_version:
        form.add_error("version", f"CLMS {release.version} is already installed.")
    elif release.withdrawn_at is not None:
        form.add_error(
            "version",
            f"CLMS {release.version} was withdrawn by the vendor (it is no longer in "
            "the vendor's signed index), so it cannot be scheduled.",
        )
    elif release.rolled_back and not force:
        form.add_error(
            "version",
            f"CLMS {release.version} was rolled back before, so it is not retried "
            "unless an admin ticks “Override”.",
        )


def _refuse_second_run(form: forms.Form) -> None:
    active = UpdateRun.active()
    if active is not None:
        form.add_error(
            None,
            f"Run {active.pk} (CLMS {active.to_version}) is already "
            f"{active.get_state_display().lower()}. Cancel it first or wait for it "
            "to finish.",
        )


class ScheduleForm(forms.Form):
    """Schedule a release into the next maintenance window or at a school time."""

    WHEN_CHOICES = (
        ("window", "In the next maintenance window"),
        ("at", "At a date and time I choose"),
    )

    version = VersionField(widget=forms.HiddenInput)
    when = forms.ChoiceField(
        choices=WHEN_CHOICES, widget=forms.RadioSelect, initial="window"
    )
    date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    time = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    force = forms.BooleanField(
        required=False,
        label="Override: allow a time outside the maintenance windows, or retry a "
        "version that was rolled back",
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        release: AvailableRelease | None = data.get("version")
        force = bool(data.get("force"))
        now = timezone.now()
        _refuse_unusable_release(self, release, force=force)
        if data.get("when") == "at":
            self._clean_time(data, now, force=force)
        elif data.get("when") == "window":
            try:
                data["at"] = scheduling.next_window_start(now)
            except scheduling.SchedulingError as e:
                self.add_error("when", f"{e}.")
        _refuse_second_run(self)
        return data

    def _clean_time(self, data: dict[str, Any], now: datetime, *, force: bool) -> None:
        day, at = data.get("date"), data.get("time")
        if day is None:
            self.add_error("date", "Enter the date (school time).")
        if at is None:
            self.add_error("time", "Enter the time (school time), like 22:30.")
        if day is None or at is None:
            return
        try:
            moment = scheduling.local_to_utc(datetime.combine(day, at))
        except scheduling.SchedulingError as e:
            self.add_error("time", str(e))
            return
        if moment <= now:
            self.add_error(
                "time",
                f"{presenting.to_school_time(moment):%Y-%m-%d %H:%M} is in the past; "
                "choose a future time.",
            )
        elif not force and not scheduling.is_inside_window(moment):
            self.add_error(
                "time",
                "This time is outside every maintenance window (or on a blackout "
                "date). Pick a time inside a window, choose the next window, or tick "
                "“Override”.",
            )
        else:
            data["at"] = moment
            data["ambiguous"] = scheduling.is_ambiguous(datetime.combine(day, at))


class UpdateNowForm(forms.Form):
    """Start an update at once (confirmed on a second page)."""

    version = VersionField(widget=forms.HiddenInput)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        release = data.get("version")
        # "Update now" is an explicit admin decision to run outside the windows.
        _refuse_unusable_release(self, release, force=True)
        _refuse_second_run(self)
        return data


class RollbackForm(forms.Form):
    """Roll back to the previous version; the admin says why and confirms."""

    reason = forms.CharField(
        max_length=500,
        required=True,
        label="Why are you rolling back?",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why, so the audit log explains it."},
    )
    understood = forms.BooleanField(
        label="I understand CLMS will be in maintenance mode while it rolls back",
        error_messages={"required": "Tick the box to confirm the rollback."},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _refuse_second_run(self)
        return data


class HistoryFilterForm(forms.Form):
    """Filters and sort order of the history page (all optional)."""

    SORT_CHOICES = (
        ("newest", "Newest first"),
        ("oldest", "Oldest first"),
        ("version", "Version"),
        ("longest", "Longest first"),
    )

    state = forms.ChoiceField(
        required=False,
        label="Status",
        choices=(("", "Any status"), *UpdateRun.State.choices),
    )
    kind = forms.ChoiceField(
        required=False, choices=(("", "Updates and rollbacks"), *UpdateRun.Kind.choices)
    )
    version = forms.CharField(required=False, max_length=64)
    date_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return data


class AuditFilterForm(forms.Form):
    """Filters of the audit log page."""

    action = forms.CharField(required=False, max_length=64)
    user = forms.CharField(required=False, max_length=150, label="User")
