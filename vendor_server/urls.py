"""Pages of the vendor_server app."""

from django.urls import path

from vendor_server import views

app_name = "vendor_server"

urlpatterns = [
    path("analytics/", views.fleet_analytics, name="analytics"),
]
