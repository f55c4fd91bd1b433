"""REST routes of the updates app (mounted at /api/updates/)."""

from django.urls import include, path

from updates.api import views

app_name = "updates_api"

urlpatterns = [
    path("check", views.CheckView.as_view(), name="check"),
    path("checks", views.ChecksView.as_view(), name="checks"),
    path("latest", views.LatestView.as_view(), name="latest"),
    path("schedule", views.ScheduleView.as_view(), name="schedule"),
    path("update-now", views.UpdateNowView.as_view(), name="update-now"),
    path("status/<int:pk>", views.StatusView.as_view(), name="status"),
    path("history", views.HistoryView.as_view(), name="history"),
    path("cancel/<int:pk>", views.CancelView.as_view(), name="cancel"),
    path("rollback", views.RollbackView.as_view(), name="rollback"),
    path("settings", views.SettingsView.as_view(), name="settings"),
    path("agent", views.AgentView.as_view(), name="agent"),
    path("agent/update", views.AgentUpdateView.as_view(), name="agent-update"),
    path("windows", views.WindowsView.as_view(), name="windows"),
    path("blackouts", views.BlackoutsView.as_view(), name="blackouts"),
    path("audit", views.AuditView.as_view(), name="audit"),
    # Critical deadlines, offline bundles, the LAN mirror: their features' routes.
    path("", include("updates.enforcement.api")),
    path("", include("updates.offline.api")),
    path("", include("updates.mirror.api")),
]
