"""REST routes of the backups app, under /api/backups/."""

from rest_framework.routers import SimpleRouter

from backups.api.views import BackupViewSet

app_name = "backups_api"

router = SimpleRouter()
router.register("", BackupViewSet, basename="backup")

urlpatterns = router.urls
