"""Pages of the backups app."""

from django.urls import path  # noqa: F401

app_name = "backups"

urlpatterns: list = []
