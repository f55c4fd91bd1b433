"""REST routes of the vendor_server app: the school API (contract in docs/vendor.md)
and the staff publishing endpoint."""

from django.urls import path

from vendor_server.api import views

app_name = "vendor_server_api"

urlpatterns = [
    path("index", views.IndexView.as_view(form="json"), name="index"),
    path("index.json", views.IndexView.as_view(form="raw"), name="index-json"),
    path(
        "index.json.asc",
        views.IndexView.as_view(form="signature"),
        name="index-signature",
    ),
    path(
        "releases/<str:version>/manifest",
        views.ManifestView.as_view(form="json"),
        name="manifest",
    ),
    path(
        "releases/<str:version>/manifest.json",
        views.ManifestView.as_view(form="raw"),
        name="manifest-json",
    ),
    path(
        "releases/<str:version>/manifest.json.asc",
        views.ManifestView.as_view(form="signature"),
        name="manifest-signature",
    ),
    path("releases/<str:version>/bundle", views.BundleView.as_view(), name="bundle"),
    path("keys", views.KeysView.as_view(), name="keys"),
    path("roots", views.RootsView.as_view(), name="roots"),
    path("reports", views.ReportsView.as_view(), name="reports"),
    path("staff/releases", views.StaffReleasesView.as_view(), name="staff-releases"),
]
