"""Pages of the backups app, under /backups/."""

from django.urls import path

from backups import views

app_name = "backups"

urlpatterns = [
    path("", views.backup_list, name="list"),
    path("create/", views.backup_create, name="create"),
    path("<int:backup_id>/verify/", views.backup_verify, name="verify"),
    path("<int:backup_id>/restore/", views.backup_restore, name="restore"),
    path("<int:backup_id>/copy/", views.backup_copy, name="copy"),
    path("<int:backup_id>/fetch/", views.backup_fetch, name="fetch"),
    path("<int:backup_id>/delete/", views.backup_delete, name="delete"),
]
