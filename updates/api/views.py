"""The updates REST API: parse, call the action, answer.

An action's refusal (``ActionRefused``) becomes a 400/403/409 answer naming
the field, through ``clms_updates.api.exception_handler``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from clms_updates.actions import VIA_API, Actor
from clms_updates.models import AuditEntry
from clms_updates.permissions import IsSchoolAdmin
from updates import actions, next_action, presenting, releases
from updates.api import serializers as s
from updates.api.base import UpdatesAPIView
from updates.api.filters import RunFilter
from updates.models import (
    AgentState,
    BlackoutPeriod,
    MaintenanceWindow,
    UpdateCheck,
    UpdateRun,
)


class CheckView(UpdatesAPIView):
    """Check for updates and answer with the outcome and its reason."""

    @extend_schema(
        summary="Check for updates",
        responses={200: s.CheckSerializer},
        description="With an API token: runs a check against the configured sources "
        "now. With a browser session (a cookie, which a page of another site could "
        "make the browser send): answers from a check finished in the last "
        f"{actions.RECENT_CHECK_SECONDS} s, and runs one only when there is none, so "
        "no page can make the agent work more. POST always checks now. `outcome` is "
        "ok, refused, offline or error; `reason` says what was found or why it was "
        "refused.",
    )
    def get(self, request: Request) -> Response:
        actor = Actor.from_request(request, VIA_API)
        if isinstance(request.successful_authenticator, SessionAuthentication):
            check = actions.recent_check_or_new(actor=actor)
        else:
            check = actions.check_for_updates(actor=actor)
        return Response(s.CheckSerializer(check).data)

    @extend_schema(
        summary="Check for updates now",
        request=None,
        responses={200: s.CheckSerializer},
        description="Runs a check now (a session needs its CSRF token).",
    )
    def post(self, request: Request) -> Response:
        check = actions.check_for_updates(actor=Actor.from_request(request, VIA_API))
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
        summary="The release offered next and the next step",
        responses={200: s.LatestSerializer},
    )
    def get(self, request: Request) -> Response:
        data = {
            "agent": AgentState.load(),
            "release": releases.latest_release(),
            "last_check": UpdateCheck.objects.first(),
            "next_action": next_action.next_action().as_dict(),
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
            409: OpenApiResponse(description="Refused by the installation's state"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = s.ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = actions.schedule_update(
            data["version"],
            actor=Actor.from_request(request, VIA_API),
            at=data.get("at"),
            next_window=data["next_window"],
            force=data["force"],
        )
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)


class UpdateNowView(UpdatesAPIView):
    """Start a verified release now; a worker takes it at once."""

    @extend_schema(
        summary="Update now",
        request=s.UpdateNowSerializer,
        responses={
            201: s.RunSerializer,
            400: OpenApiResponse(description="Field errors"),
            409: OpenApiResponse(description="Refused by the installation's state"),
        },
        description="Outside the maintenance windows this is an admin override, "
        "recorded in the audit log.",
    )
    def post(self, request: Request) -> Response:
        serializer = s.UpdateNowSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = actions.update_now(
            serializer.validated_data["version"],
            actor=Actor.from_request(request, VIA_API),
            force=serializer.validated_data["force"],
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
        get_object_or_404(UpdateRun, pk=pk)
        run = actions.cancel_run(pk, actor=Actor.from_request(request, VIA_API))
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
        run = actions.roll_back(
            actor=Actor.from_request(request, VIA_API),
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)


class AgentView(UpdatesAPIView):
    """The agent itself (GET), and updating it (POST ``agent/update``)."""

    @extend_schema(
        summary="This agent's version and the agent release offered",
        responses={200: s.AgentUpdateSerializer},
    )
    def get(self, request: Request) -> Response:
        overview = presenting.agent_update_overview(AgentState.load())
        return Response(s.AgentUpdateSerializer(overview).data)


class AgentUpdateView(UpdatesAPIView):
    """Update the agent now, or as soon as nothing is in the way."""

    @extend_schema(
        summary="Update the agent itself",
        request=s.AgentUpdateRequestSerializer,
        responses={
            201: s.RunSerializer,
            202: OpenApiResponse(
                description="It waits for the run or backup in progress"
            ),
            400: OpenApiResponse(description="No such agent release"),
            409: OpenApiResponse(description="The agent is updating already"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = s.AgentUpdateRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = serializer.validated_data["version"]
        run = actions.update_agent(version, actor=Actor.from_request(request, VIA_API))
        if run is None:
            return Response(
                {
                    "detail": f"CLMS Updates {version} will install itself as soon as "
                    "the run or backup in progress has ended.",
                    "code": "waiting",
                },
                status=status.HTTP_202_ACCEPTED,
            )
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)


class SettingsView(UpdatesAPIView):
    """The settings releases ask the school for (GET), and giving their values (PUT)."""

    @extend_schema(
        summary="Settings releases ask for", responses={200: s.SettingsSerializer}
    )
    def get(self, request: Request) -> Response:
        return Response(s.SettingsSerializer(presenting.settings_overview()).data)

    @extend_schema(
        summary="Give settings' values",
        request=s.SettingValuesSerializer,
        responses={
            200: s.SettingsSerializer,
            400: OpenApiResponse(description="Unknown setting or unusable value"),
        },
        description="Values go to the project's env file (0600). A secret is never "
        "shown again. An update waiting for these values goes ahead.",
    )
    def put(self, request: Request) -> Response:
        serializer = s.SettingValuesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actions.provide_settings(
            serializer.validated_data["values"],
            actor=Actor.from_request(request, VIA_API),
        )
        return Response(s.SettingsSerializer(presenting.settings_overview()).data)


class ReplaceListView(UpdatesAPIView):
    """GET the whole list; PUT a new list that replaces it atomically (an action)."""

    serializer_class: type[s.serializers.ModelSerializer]
    model: type[Model]

    def replace(self, items: list[dict[str, Any]], actor: Actor) -> list[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        return self.model._default_manager.all()

    def get(self, request: Request) -> Response:
        return Response(self.serializer_class(self.get_queryset(), many=True).data)

    def put(self, request: Request) -> Response:
        serializer = self.serializer_class(data=request.data, many=True)
        serializer.is_valid(raise_exception=True)
        rows = self.replace(
            list(serializer.validated_data), Actor.from_request(request, VIA_API)
        )
        return Response(self.serializer_class(rows, many=True).data)


class WindowsView(ReplaceListView):
    """Maintenance windows (school time)."""

    serializer_class = s.WindowSerializer
    model = MaintenanceWindow

    def replace(self, items: list[dict[str, Any]], actor: Actor) -> list[Any]:
        return actions.replace_windows(items, actor=actor)

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

    def replace(self, items: list[dict[str, Any]], actor: Actor) -> list[Any]:
        return actions.replace_blackouts(items, actor=actor)

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
