"""REST routes of the vendor_server app."""

from django.urls import path  # noqa: F401

app_name = "vendor_server_api"

urlpatterns: list = []
