"""REST routes of critical deadlines and emergency overrides.

Mounted under ``/api/updates/`` (see ``urlpatterns``):

- ``GET enforcement``: is CLMS blocked, and why. The CLMS app calls it on its
  operations. With ``UPDATES_ENFORCEMENT_TOKEN`` set it needs that token (as
  ``Authorization: Bearer …`` or ``?token=…``) or a viewer's login; with it
  empty the answer is public and read-only (it says only whether CLMS is
  blocked, until when, and by which version).
- ``GET/POST enforcement/overrides``, ``POST enforcement/overrides/<id>/revoke``,
  ``POST enforcement/move``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clms_updates.actions import VIA_API, Actor
from clms_updates.authentication import bearer_token, token_is_one_of
from clms_updates.permissions import is_school_viewer
from updates import actions, scheduling
from updates.api.base import UpdatesAPIView
from updates.enforcement.state import enforcement_state
from updates.models import EmergencyOverride


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
        given = bearer_token(request) or request.query_params.get("token", "")
        return token_is_one_of(given, [expected])


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
        return Response(enforcement_state().as_dict())


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

    reason = serializers.CharField(max_length=2000)
    hours = serializers.FloatField(required=False, min_value=0.1, max_value=10_000)


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
        override = actions.grant_override(
            actor=Actor.from_request(request, VIA_API),
            reason=data.validated_data["reason"],
            hours=data.validated_data.get("hours"),
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
        override = actions.revoke_override(
            pk, actor=Actor.from_request(request, VIA_API)
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
        run = actions.move_critical_update(
            data.validated_data["at"], actor=Actor.from_request(request, VIA_API)
        )
        return Response(
            {"run_id": run.pk, "scheduled_for": run.scheduled_for.isoformat()}
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
]
