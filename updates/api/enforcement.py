"""REST routes of critical deadlines, emergency overrides and offline bundles.

Mounted under ``/api/updates/`` (see ``urlpatterns``):

- ``GET enforcement``: is CLMS blocked, and why. The CLMS app calls it on its
  operations. With ``UPDATES_ENFORCEMENT_TOKEN`` set it needs that token (as
  ``Authorization: Bearer …`` or ``?token=…``) or a viewer's login; with it
  empty the answer is public and read-only (it says only whether CLMS is
  blocked, until when, and by which version).
- ``GET/POST enforcement/overrides``, ``POST enforcement/overrides/<id>/revoke``.
- ``GET bundles``, ``POST bundles/scan``, ``POST bundles/<id>/apply``.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clms_updates import audit
from clms_updates.permissions import is_school_viewer
from updates import enforcement, mirroring, offline, scheduling
from updates.api.views import UpdatesAPIView
from updates.enforcement_tasks import queue_run_now
from updates.models import EmergencyOverride, OfflineBundle
from updates.sources import SourceRefused


class EnforcementReader(BasePermission):
    """The CLMS app's token, a viewer's login, or anyone when no token is set."""

    message = (
        "Send UPDATES_ENFORCEMENT_TOKEN as 'Authorization: Bearer <token>' or "
        "'?token=<token>', or log in as a school viewer."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        expected = settings.UPDATES_ENFORCEMENT_TOKEN
        if not expected or is_school_viewer(request.user):
            return True
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header.startswith("Bearer ") else ""
        given = given or request.query_params.get("token", "")
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


class EnforcementView(APIView):
    """Whether CLMS is blocked by a missed critical deadline (for the CLMS app)."""

    # The CLMS app asks on each operation; the answer is cheap and read-only.
    permission_classes = [EnforcementReader]
    throttle_classes: list[Any] = []

    @extend_schema(
        summary="Is CLMS blocked by a missed critical deadline?",
        description="`blocked` true means CLMS operations must answer 423 with "
        "`message`. Also gives the critical version, deadline, seconds left and any "
        "emergency override in force.",
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        return Response(enforcement.enforcement_state().as_dict())


class OverrideSerializer(serializers.ModelSerializer):
    """An emergency override with its expiry and whether it is in force."""

    active = serializers.SerializerMethodField()

    class Meta:
        model = EmergencyOverride
        fields = [
            "id",
            "username",
            "reason",
            "release_version",
            "created_at",
            "expires_at",
            "revoked_at",
            "revoked_by",
            "active",
        ]

    def get_active(self, obj: EmergencyOverride) -> bool:
        return obj.is_active()


class GrantOverrideSerializer(serializers.Serializer):
    """A request for an emergency override: why, and for how long."""

    reason = serializers.CharField(min_length=5, max_length=2000)
    hours = serializers.FloatField(required=False, min_value=0.1)

    def validate_hours(self, value: float) -> float:
        limit = settings.UPDATES_OVERRIDE_MAX_HOURS
        if value > limit:
            raise serializers.ValidationError(
                f"An emergency override lasts at most {limit} hours "
                "(UPDATES_OVERRIDE_MAX_HOURS)."
            )
        return value


class OverridesView(UpdatesAPIView):
    """List overrides (viewers) or grant one (school admins, reason required)."""

    @extend_schema(
        summary="Emergency overrides", responses={200: OverrideSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        rows = EmergencyOverride.objects.all()[:100]
        return Response(OverrideSerializer(rows, many=True).data)

    @extend_schema(
        summary="Grant an emergency override",
        request=GrantOverrideSerializer,
        responses={201: OverrideSerializer},
    )
    def post(self, request: Request) -> Response:
        data = GrantOverrideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            override = enforcement.grant_override(
                user=request.user,
                reason=data.validated_data["reason"],
                hours=data.validated_data.get("hours"),
                request=request._request,
            )
        except enforcement.OverrideRefused as e:
            return Response(
                {"detail": str(e), "code": "override_refused"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            OverrideSerializer(override).data, status=status.HTTP_201_CREATED
        )


class RevokeOverrideView(UpdatesAPIView):
    """End an emergency override early (school admins)."""

    @extend_schema(
        summary="Revoke an emergency override",
        request=None,
        responses={200: OverrideSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        override = get_object_or_404(EmergencyOverride, pk=pk)
        try:
            override = enforcement.revoke_override(
                override, user=request.user, request=request._request
            )
        except enforcement.OverrideRefused as e:
            return Response(
                {"detail": str(e), "code": "override_refused"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(OverrideSerializer(override).data)


class MoveSerializer(serializers.Serializer):
    """When the critical update should run instead (before its deadline)."""

    at = serializers.CharField()

    def validate_at(self, value: str) -> datetime:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise serializers.ValidationError(
                "Give an ISO time such as 2026-12-01T22:00 (school time) or "
                "2026-12-01T22:00:00+00:00."
            ) from None
        if timezone.is_naive(moment):
            try:
                return scheduling.local_to_utc(moment)
            except scheduling.SchedulingError as e:
                raise serializers.ValidationError(str(e)) from None
        return moment


class MoveCriticalView(UpdatesAPIView):
    """Move the scheduled critical update earlier (school admins)."""

    @extend_schema(
        summary="Move the critical update",
        request=MoveSerializer,
        responses={200: dict},
        description="`at` is an ISO time (with an offset, or school time when "
        "naive); it must be before the deadline.",
    )
    def post(self, request: Request) -> Response:
        data = MoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        at = data.validated_data["at"]
        try:
            run = enforcement.move_critical_update(
                at, user=request.user, request=request._request
            )
        except scheduling.SchedulingError as e:
            return Response(
                {"detail": str(e), "code": "not_moved"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            {"run_id": run.pk, "scheduled_for": run.scheduled_for.isoformat()}
        )


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
        touched = offline.scan_offline_folder(settle=False)
        audit.record(
            "updates.bundle.scan",
            request=request._request,
            target=str(settings.UPDATES_OFFLINE_DIR),
            found=[f"{b.file_name}: {b.state}" for b in touched],
        )
        return Response(BundleSerializer(touched, many=True).data)


class DownloadSerializer(serializers.Serializer):
    """Which release's bundle to fetch from the mirror."""

    version = serializers.RegexField(r"^[0-9A-Za-z.+-]{1,64}$")


class DownloadBundleView(UpdatesAPIView):
    """Fetch a release's bundle from the LAN mirror into the offline folder, then scan."""

    @extend_schema(
        summary="Download a bundle from the mirror",
        request=DownloadSerializer,
        responses={200: BundleSerializer(many=True)},
    )
    def post(self, request: Request) -> Response:
        data = DownloadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = data.validated_data["version"]
        try:
            path = mirroring.download_bundle(version)
        except (mirroring.MirrorUnavailable, SourceRefused) as e:
            return Response(
                {"detail": str(e), "code": "mirror_unavailable"},
                status=status.HTTP_502_BAD_GATEWAY,
            )
        touched = offline.scan_offline_folder(settle=False)
        audit.record(
            "updates.bundle.download",
            request=request._request,
            target=path.name,
            version=version,
        )
        return Response(BundleSerializer(touched, many=True).data)


class ApplyBundleView(UpdatesAPIView):
    """Apply a verified bundle now: schedules its release for the pipeline."""

    @extend_schema(
        summary="Apply a verified offline bundle", request=None, responses={201: dict}
    )
    def post(self, request: Request, pk: int) -> Response:
        bundle = get_object_or_404(OfflineBundle, pk=pk)
        try:
            run = offline.schedule_bundle(bundle, user=request.user)
        except offline.BundleError as e:
            return Response(
                {"detail": str(e), "code": "bundle_not_applicable"},
                status=status.HTTP_409_CONFLICT,
            )
        queue_run_now(run.pk)
        audit.record(
            "updates.bundle.apply",
            request=request._request,
            target=f"run {run.pk}",
            bundle=bundle.file_name,
            version=bundle.version,
        )
        return Response(
            {"run_id": run.pk, "to_version": run.to_version, "state": run.state},
            status=status.HTTP_201_CREATED,
        )


urlpatterns = [
    path("enforcement", EnforcementView.as_view(), name="enforcement"),
    path("enforcement/overrides", OverridesView.as_view(), name="overrides"),
    path(
        "enforcement/overrides/<int:pk>/revoke",
        RevokeOverrideView.as_view(),
        name="override-revoke",
    ),
    path("enforcement/move", MoveCriticalView.as_view(), name="critical-move"),
    path("bundles", BundlesView.as_view(), name="bundles"),
    path("bundles/scan", ScanBundlesView.as_view(), name="bundles-scan"),
    path("bundles/download", DownloadBundleView.as_view(), name="bundles-download"),
    path("bundles/<int:pk>/apply", ApplyBundleView.as_view(), name="bundle-apply"),
]
