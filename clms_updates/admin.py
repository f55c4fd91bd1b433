"""Admin for the shared models: the audit log (read-only) and notification targets."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from clms_updates import notifications
from clms_updates.actions import VIA_ADMIN, ActionRefused, Actor
from clms_updates.models import AuditEntry, NotificationDelivery, NotificationTarget


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Browse the audit log; nobody edits or deletes history."""

    list_display = ("created_at", "username", "action", "target", "address")
    list_filter = ("action",)
    search_fields = ("username", "action", "target")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class NotificationTargetForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=(), widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = NotificationTarget
        fields = ("name", "url", "events")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["events"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [
            (e.name, e.label) for e in notifications.events_for_this_role()
        ]


@admin.register(NotificationTarget)
class NotificationTargetAdmin(admin.ModelAdmin):
    """Vendor staff's notification targets (Apprise URLs) for fleet events."""

    form = NotificationTargetForm
    list_display = ("name", "masked_url", "event_list", "enabled")
    actions = ("send_test",)

    @admin.display(description="URL (secrets hidden)")
    def masked_url(self, obj: NotificationTarget) -> str:
        return notifications.masked(obj.url)

    @admin.display(description="events")
    def event_list(self, obj: NotificationTarget) -> str:
        return ", ".join(obj.events)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # remove and add again: every change is audited by the actions

    def save_model(
        self, request: HttpRequest, obj: NotificationTarget, form: Any, change: bool
    ) -> None:
        try:
            target = notifications.add_target(
                form.cleaned_data["name"],
                form.cleaned_data["url"],
                form.cleaned_data["events"],
                actor=Actor.from_request(request, VIA_ADMIN),
            )
        except ActionRefused as e:
            messages.error(request, e.message)
            return
        obj.pk = target.pk

    def delete_model(self, request: HttpRequest, obj: NotificationTarget) -> None:
        notifications.remove_target(
            obj.pk, actor=Actor.from_request(request, VIA_ADMIN)
        )

    @admin.action(description="Send a test message")
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> None:
        for target in queryset:
            delivered, problem = notifications.send_test(
                target.pk, actor=Actor.from_request(request, VIA_ADMIN)
            )
            if delivered:
                messages.success(request, f"{target.name}: delivered.")
            else:
                messages.error(request, f"{target.name}: not delivered ({problem}).")


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
    """What was sent to which target, and what failed (read-only)."""

    list_display = ("created_at", "target", "event", "subject", "status", "attempts")
    list_filter = ("status", "event")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
