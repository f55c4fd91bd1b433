"""REST views of the backups API: parse, call the action of ``backups.actions``.

A refusal (``ActionRefused``) answers 400/403/409 with ``detail`` saying why.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backups import actions
from backups.api.serializers import (
    BackupSerializer,
    CreateBackupSerializer,
    RestoreSerializer,
)
from backups.models import Backup
from clms_updates.actions import VIA_API, Actor


def _actor(request: Request) -> Actor:
    return Actor.from_request(request, VIA_API)


class BackupViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """List, create, inspect, verify, restore, copy, fetch and delete backups.

    Permissions, authentication and throttling are the project defaults:
    viewers read, school admins change.
    """

    queryset = Backup.objects.all()
    serializer_class = BackupSerializer
    filterset_fields = ["status", "engine"]

    @extend_schema(
        summary="Start a backup (then verified, and copied if set up)",
        request=CreateBackupSerializer,
        responses={202: BackupSerializer},
    )
    def create(self, request: Request) -> Response:
        data = CreateBackupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        backup = actions.create_backup(
            actor=_actor(request), reason=data.validated_data["reason"]
        )
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        backup = actions.verify_backup(self.get_object().pk, actor=_actor(request))
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        data = RestoreSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        backup = actions.restore_backup(
            self.get_object().pk,
            actor=_actor(request),
            reason=data.validated_data["reason"],
            confirm=data.validated_data["confirm"],
        )
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Copy a verified backup to the second target",
        request=None,
        responses={
            202: BackupSerializer,
            409: OpenApiResponse(
                description="No second target is configured, the backup is not "
                "verified, or its local file is missing; `detail` says which."
            ),
        },
        description="Uploads the file and its manifest in a worker; `copies` and "
        "`locations` list every place the backup lives once it is done.",
    )
    @action(detail=True, methods=["post"])
    def copy(self, request: Request, pk: str | None = None) -> Response:
        backup = actions.copy_backup(self.get_object().pk, actor=_actor(request))
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Fetch a backup's lost local file back from its copy",
        request=None,
        responses={
            202: BackupSerializer,
            409: OpenApiResponse(
                description="No second target, no copy there, the local file is "
                "still present, or the backup failed; `detail` says which."
            ),
        },
        description="Downloads the copy into the backup directory in a worker, "
        "then verifies the backup again.",
    )
    @action(detail=True, methods=["post"])
    def fetch(self, request: Request, pk: str | None = None) -> Response:
        backup = actions.fetch_backup(self.get_object().pk, actor=_actor(request))
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        actions.delete_backup(self.get_object().pk, actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
