"""Django admin views of the agent's records (read-mostly; the API and pages change things)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from updates.models import (
    AgentState,
    AvailableRelease,
    BannerDismissal,
    BlackoutPeriod,
    MaintenanceWindow,
    UpdateCheck,
    UpdateRun,
)


@admin.register(UpdateRun)
class UpdateRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "from_version",
        "to_version",
        "state",
        "scheduled_for",
    ]
    list_filter = ["state", "kind"]
    readonly_fields = [f.name for f in UpdateRun._meta.fields]


@admin.register(UpdateCheck)
class UpdateCheckAdmin(admin.ModelAdmin):
    list_display = ["started_at", "source", "outcome", "found_version", "reason"]
    list_filter = ["outcome", "trigger"]
    readonly_fields = [f.name for f in UpdateCheck._meta.fields]


@admin.register(AvailableRelease)
class AvailableReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "channel", "critical", "verified_at", "rolled_back"]
    readonly_fields = [
        f.name for f in AvailableRelease._meta.fields if f.name != "rolled_back"
    ]


admin.site.register(AgentState)
admin.site.register(MaintenanceWindow)
admin.site.register(BlackoutPeriod)


@admin.register(BannerDismissal)
class BannerDismissalAdmin(admin.ModelAdmin):
    """Who hid which optional release's banner; kept by the Hide button only."""

    list_display = ["user", "release", "dismissed_at"]
    readonly_fields = ["user", "release", "dismissed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: BannerDismissal | None = None
    ) -> bool:
        return False
