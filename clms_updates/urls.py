"""URL configuration. ``CLMS_ROLE`` decides which half of the product is mounted."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from clms_updates import metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin).
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema"),
        name="swagger-ui",
    ),
]

if settings.SCHOOL_ROLE_ENABLED:
    urlpatterns += [
        path("updates/", include("updates.urls")),
        path("backups/", include("backups.urls")),
        path("api/updates/", include("updates.api.urls")),
        path("api/backups/", include("backups.api.urls")),
    ]

if settings.VENDOR_ROLE_ENABLED:
    urlpatterns += [
        path("vendor/", include("vendor_server.urls")),
        path("vendor/api/v1/", include("vendor_server.api.urls")),
    ]
