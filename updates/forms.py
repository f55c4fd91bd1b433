"""Forms of the school pages: they parse what the admin typed, nothing more.

Every rule (installed, withdrawn, rolled back, windows, deadlines, another
run) is checked by the action the view calls (``updates.actions``), the same
one the API and the commands call; a refusal comes back on its field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms

from clms_updates import notifications
from updates import scheduling
from updates.models import UpdateRun

RETRY_LABEL = (
    "Override: allow a time outside the maintenance windows, or retry a version "
    "that was rolled back (audited)"
)


class ScheduleForm(forms.Form):
    """Schedule a release into the next maintenance window or at a school time."""

    WHEN_CHOICES = (
        ("window", "In the next maintenance window"),
        ("at", "At a date and time I choose"),
    )

    version = forms.CharField(max_length=64, widget=forms.HiddenInput)
    when = forms.ChoiceField(
        choices=WHEN_CHOICES, widget=forms.RadioSelect, initial="window"
    )
    date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    time = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    force = forms.BooleanField(required=False, label=RETRY_LABEL)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        """``at`` (UTC) from the school-time date and time, when "at" was chosen."""
        data = super().clean() or {}
        data["at"] = None
        data["ambiguous"] = False
        if data.get("when") != "at":
            return data
        day, at = data.get("date"), data.get("time")
        if day is None:
            self.add_error("date", "Enter the date (school time).")
        if at is None:
            self.add_error("time", "Enter the time (school time), like 22:30.")
        if day is None or at is None:
            return data
        try:
            data["at"] = scheduling.local_to_utc(datetime.combine(day, at))
        except scheduling.SchedulingError as e:
            self.add_error("time", str(e))
            return data
        data["ambiguous"] = scheduling.is_ambiguous(datetime.combine(day, at))
        return data


class UpdateNowForm(forms.Form):
    """Start an update at once (confirmed on a second page)."""

    version = forms.CharField(max_length=64, widget=forms.HiddenInput)
    force = forms.BooleanField(
        required=False, label="Retry this version although it was rolled back (audited)"
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)


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


class NotificationTargetForm(forms.Form):
    """A new notification target: its name, its Apprise URL, the events it wants."""

    name = forms.CharField(max_length=100, help_text="e.g. “IT team on ntfy”")
    url = forms.CharField(
        max_length=2000,
        label="Apprise URL",
        help_text="ntfy://…, tgram://bot-token/chat-id, slack://…, msteams://…, "
        "json://host/path (a webhook), mailto://…",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    events = forms.MultipleChoiceField(
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Each occurrence is sent once.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        events = notifications.events_for_this_role()
        field = self.fields["events"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(e.name, e.label) for e in events]
        if not self.is_bound:
            self.initial["events"] = [e.name for e in events]
