"""Pages of the updates app, under /updates/."""

from django.urls import path

from updates import views, views_enforcement, views_offline, views_runs

app_name = "updates"

urlpatterns = [
    path("", views.manager, name="manager"),
    path("health/", views.agent_health, name="health"),
    path("check/", views.check_now, name="check"),
    path("schedule/", views.schedule, name="schedule"),
    path("update-now/", views.update_now, name="update_now"),
    path("runs/<int:run_id>/", views_runs.run_detail, name="run"),
    path("runs/<int:run_id>/cancel/", views.cancel, name="cancel"),
    path("history/", views_runs.history, name="history"),
    path("rollback/", views_runs.rollback, name="rollback"),
    path("audit/", views_runs.audit_log, name="audit"),
    path("banner/dismiss/", views_runs.dismiss_banner, name="dismiss_banner"),
    # Critical deadlines and offline bundles.
    path("enforcement/", views_enforcement.overrides, name="enforcement"),
    path("enforcement/move/", views_enforcement.move, name="critical_move"),
    path(
        "enforcement/overrides/<int:pk>/revoke/",
        views_enforcement.revoke,
        name="override_revoke",
    ),
    path("offline/", views_offline.offline_page, name="offline"),
    path("offline/scan/", views_offline.scan, name="offline_scan"),
    path("offline/bundles/<int:pk>/apply/", views_offline.apply, name="offline_apply"),
]
