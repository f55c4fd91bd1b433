"""Pages of the updates app, under /updates/ (features bring their own routes)."""

from django.urls import include, path

from updates.enforcement import views as enforcement
from updates.offline import views as offline
from updates.views import manager, notifications, runs

app_name = "updates"

urlpatterns = [
    path("", manager.manager, name="manager"),
    path("health/", manager.agent_health, name="health"),
    path("check/", manager.check_now, name="check"),
    path("schedule/", manager.schedule, name="schedule"),
    path("update-now/", manager.update_now, name="update_now"),
    path("banner/dismiss/", manager.dismiss_banner, name="dismiss_banner"),
    path("settings/", manager.save_settings, name="settings"),
    path("agent/update/", manager.update_agent, name="update_agent"),
    path("support-bundle/", manager.support_bundle, name="support_bundle"),
    path("runs/<int:run_id>/", runs.run_detail, name="run"),
    path("runs/<int:run_id>/cancel/", runs.cancel, name="cancel"),
    path("runs/<int:run_id>/start-now/", runs.start_now, name="start_now"),
    path("history/", runs.history, name="history"),
    path("rollback/", runs.rollback, name="rollback"),
    path("audit/", runs.audit_log, name="audit"),
    path("notifications/", notifications.targets, name="notifications"),
    path(
        "notifications/<int:target_id>/test/",
        notifications.send_test,
        name="notification_test",
    ),
    path(
        "notifications/<int:target_id>/remove/",
        notifications.remove,
        name="notification_remove",
    ),
    path("enforcement/", include(enforcement.urlpatterns)),
    path("offline/", include(offline.urlpatterns)),
]
