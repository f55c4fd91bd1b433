"""The updates REST API: validate, call the logic module, answer, audit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from clms_updates import audit
from clms_updates.models import AuditEntry
from clms_updates.permissions import IsSchoolAdmin, IsSchoolViewer
from updates import checking, scheduling
from updates.api import serializers as s
from updates.api.filters import RunFilter
from updates.models import (
    AgentState,
    BlackoutPeriod,
    MaintenanceWindow,
    UpdateCheck,
    UpdateRun,
)


class UpdatesThrottle(ScopedRateThrottle):
    """Per-user limit on every /api/updates/ route (``UPDATES_API_THROTTLE``)."""

    scope_attr = "throttle_scope"

    def get_rate(self) -> str | None:
        return str(settings.UPDATES_API_THROTTLE)


class UpdatesAPIView(APIView):
    """Base: authenticated viewers read, school admins write, always throttled."""

    permission_classes = [IsAuthenticated, IsSchoolViewer]
    throttle_classes = [UpdatesThrottle]
    throttle_scope = "updates"


def conflict(message: str) -> Response:
    return Response(
        {"detail": message, "code": "conflict"}, status=status.HTTP_409_CONFLICT
    )


class CheckView(UpdatesAPIView):
    """Check for updates now and answer with the outcome and its reason."""

    @extend_schema(
        summary="Check for updates now",
        responses={200: s.CheckSerializer},
        description="Runs a check against the configured sources. `outcome` is ok, "
        "refused, offline or error; `reason` says what was found or why it was refused.",
    )
    def get(self, request: Request) -> Response:
        check = checking.run_check(
            trigger=UpdateCheck.Trigger.MANUAL, user=request.user
        )
        audit.record(
            "updates.check",
            request=request,
            target=f"check {check.pk}",
            outcome=check.outcome,
            reason=check.reason[:500],
            found_version=check.found_version,
        )
        return Response(s.CheckSerializer(check).data)


class ChecksView(UpdatesAPIView, generics.ListAPIView):
    """Past checks, newest first, with every refusal reason; filter by outcome."""

    queryset = UpdateCheck.objects.all()
    serializer_class = s.CheckSerializer
    filterset_fields = ["outcome", "trigger"]

    @extend_schema(summary="Past checks and their reasons")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class LatestView(UpdatesAPIView):
    """The newest verified release above the installed version, and the agent's state."""

    @extend_schema(
        summary="Newest verified release", responses={200: s.LatestSerializer}
    )
    def get(self, request: Request) -> Response:
        data = {
            "agent": AgentState.load(),
            "release": checking.latest_release(),
            "last_check": UpdateCheck.objects.first(),
        }
        return Response(s.LatestSerializer(data).data)


class ScheduleView(UpdatesAPIView):
    """Schedule a verified release at a time or into the next maintenance window."""

    @extend_schema(
        summary="Schedule an update",
        request=s.ScheduleSerializer,
        responses={
            201: s.RunSerializer,
            400: OpenApiResponse(description="Field errors"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = s.ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            run = scheduling.schedule_update(
                data["version"], at=data["at"], user=request.user, forced=data["force"]
            )
        except scheduling.SchedulingError as e:
            raise ValidationError({"non_field_errors": [str(e)]}) from None
        audit.record(
            "updates.schedule",
            request=request,
            target=f"run {run.pk}",
            version=run.to_version,
            scheduled_for=run.scheduled_for.isoformat(),
            forced=run.forced,
            next_window=data["next_window"],
        )
        if data["force"]:
            audit.record(
                "updates.override",
                request=request,
                target=f"run {run.pk}",
                what="schedule outside the windows or retry a rolled-back version",
            )
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)


class StatusView(UpdatesAPIView, generics.RetrieveAPIView):
    """One run and where it is."""

    queryset = UpdateRun.objects.select_related("requested_by")
    serializer_class = s.RunSerializer

    @extend_schema(summary="Status of a run")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class HistoryView(UpdatesAPIView, generics.ListAPIView):
    """Every run, newest first; filter by status, version, kind, date range."""

    queryset = UpdateRun.objects.select_related("requested_by")
    serializer_class = s.RunSerializer
    filterset_class = RunFilter

    @extend_schema(summary="History of runs")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class CancelView(UpdatesAPIView):
    """Cancel a scheduled run; it will never run."""

    @extend_schema(
        summary="Cancel a scheduled run",
        request=None,
        responses={
            200: s.RunSerializer,
            409: OpenApiResponse(description="Not scheduled"),
        },
    )
    def delete(self, request: Request, pk: int) -> Response:
        run = get_object_or_404(UpdateRun, pk=pk)
        try:
            run = scheduling.cancel_run(run)
        except scheduling.SchedulingError as e:
            return conflict(str(e))
        audit.record(
            "updates.cancel",
            request=request,
            target=f"run {run.pk}",
            version=run.to_version,
        )
        return Response(s.RunSerializer(run).data)


class RollbackView(UpdatesAPIView):
    """Roll back to the version installed before the current one."""

    @extend_schema(
        summary="Roll back to the previous version",
        request=s.RollbackSerializer,
        responses={
            201: s.RunSerializer,
            409: OpenApiResponse(description="Cannot roll back"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = s.RollbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            run = scheduling.schedule_rollback(user=request.user)
        except scheduling.SchedulingError as e:
            return conflict(str(e))
        audit.record(
            "updates.rollback",
            request=request,
            target=f"run {run.pk}",
            from_version=run.from_version,
            to_version=run.to_version,
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)


class ReplaceListView(UpdatesAPIView):
    """GET the whole list; PUT a new list that replaces it atomically."""

    serializer_class: type[s.serializers.ModelSerializer]
    model: type[Model]
    audit_action = ""

    def get_queryset(self) -> QuerySet[Any]:
        return self.model._default_manager.all()

    def get(self, request: Request) -> Response:
        return Response(self.serializer_class(self.get_queryset(), many=True).data)

    def put(self, request: Request) -> Response:
        serializer = self.serializer_class(data=request.data, many=True)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            self.get_queryset().delete()
            serializer.save()
        audit.record(self.audit_action, request=request, items=serializer.data)
        return Response(serializer.data)


class WindowsView(ReplaceListView):
    """Maintenance windows (school time)."""

    serializer_class = s.WindowSerializer
    model = MaintenanceWindow
    audit_action = "updates.windows"

    @extend_schema(
        summary="Maintenance windows", responses={200: s.WindowSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        summary="Replace the maintenance windows",
        request=s.WindowSerializer(many=True),
        responses={200: s.WindowSerializer(many=True)},
    )
    def put(self, request: Request) -> Response:
        return super().put(request)


class BlackoutsView(ReplaceListView):
    """Blackout periods."""

    serializer_class = s.BlackoutSerializer
    model = BlackoutPeriod
    audit_action = "updates.blackouts"

    @extend_schema(
        summary="Blackout periods", responses={200: s.BlackoutSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        summary="Replace the blackout periods",
        request=s.BlackoutSerializer(many=True),
        responses={200: s.BlackoutSerializer(many=True)},
    )
    def put(self, request: Request) -> Response:
        return super().put(request)


class AuditView(UpdatesAPIView, generics.ListAPIView):
    """The audit log of admin actions (admins only), newest first."""

    permission_classes = [IsAuthenticated, IsSchoolAdmin]
    queryset = AuditEntry.objects.all()
    serializer_class = s.AuditSerializer
    filterset_fields = ["action", "username"]

    @extend_schema(summary="Audit log (admins only)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
