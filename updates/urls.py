"""Pages of the updates app."""

from django.urls import path  # noqa: F401

app_name = "updates"

urlpatterns: list = []
