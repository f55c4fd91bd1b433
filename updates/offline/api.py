"""REST routes of offline bundles, under ``/api/updates/``.

``GET bundles``, ``POST bundles/scan``, ``POST bundles/download`` (from the
LAN mirror) and ``POST bundles/<id>/apply``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from clms_updates.actions import VIA_API, Actor
from updates import actions
from updates.api.base import UpdatesAPIView
from updates.models import OfflineBundle


class BundleSerializer(serializers.ModelSerializer):
    """An offline bundle found in the folder and its state."""

    class Meta:
        model = OfflineBundle
        fields = [
            "id",
            "file_name",
            "sha256",
            "size",
            "state",
            "reason",
            "version",
            "found_at",
            "processed_at",
        ]


class BundlesView(UpdatesAPIView):
    """The bundles found in the offline folder, newest first."""

    @extend_schema(
        summary="Offline bundles", responses={200: BundleSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        return Response(
            BundleSerializer(OfflineBundle.objects.all()[:100], many=True).data
        )


class ScanBundlesView(UpdatesAPIView):
    """Scan the offline folder now (school admins); answers the bundles processed."""

    @extend_schema(
        summary="Scan the offline folder now",
        request=None,
        responses={200: BundleSerializer(many=True)},
    )
    def post(self, request: Request) -> Response:
        touched = actions.scan_offline(actor=Actor.from_request(request, VIA_API))
        return Response(BundleSerializer(touched, many=True).data)


class DownloadSerializer(serializers.Serializer):
    """Which release's bundle to fetch from the mirror."""

    version = serializers.RegexField(r"^[0-9A-Za-z.+-]{1,64}$")


class DownloadBundleView(UpdatesAPIView):
    """Fetch a release's bundle from the LAN mirror into the offline folder, then scan."""

    @extend_schema(
        summary="Download a bundle from the mirror",
        request=DownloadSerializer,
        responses={
            200: BundleSerializer(many=True),
            409: OpenApiResponse(description="The mirror could not supply it"),
        },
    )
    def post(self, request: Request) -> Response:
        data = DownloadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        touched = actions.download_bundle(
            data.validated_data["version"], actor=Actor.from_request(request, VIA_API)
        )
        return Response(BundleSerializer(touched, many=True).data)


class ApplySerializer(serializers.Serializer):
    """An admin's audited override to retry a version that was rolled back."""

    force = serializers.BooleanField(default=False)


class ApplyBundleView(UpdatesAPIView):
    """Apply a verified bundle now: its release goes through the same pipeline."""

    @extend_schema(
        summary="Apply a verified offline bundle",
        request=ApplySerializer,
        responses={
            201: dict,
            409: OpenApiResponse(description="Refused; `detail` says why"),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        data = ApplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = actions.apply_bundle(
            pk,
            actor=Actor.from_request(request, VIA_API),
            force=data.validated_data["force"],
        )
        return Response(
            {"run_id": run.pk, "to_version": run.to_version, "state": run.state},
            status=status.HTTP_201_CREATED,
        )


urlpatterns = [
    path("bundles", BundlesView.as_view(), name="bundles"),
    path("bundles/scan", ScanBundlesView.as_view(), name="bundles-scan"),
    path("bundles/download", DownloadBundleView.as_view(), name="bundles-download"),
    path("bundles/<int:pk>/apply", ApplyBundleView.as_view(), name="bundle-apply"),
]
