"""REST routes of the updates app."""

from django.urls import path  # noqa: F401

app_name = "updates_api"

urlpatterns: list = []
