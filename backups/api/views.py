"""REST views of the backups API: thin, validation here, work in Celery tasks."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backups import copying, creating, retention, tasks
from backups.api.serializers import (
    BackupSerializer,
    CreateBackupSerializer,
    RestoreSerializer,
)
from backups.errors import BackupError
from backups.models import Backup
from backups.storage import copy_target


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

    def create(self, request: Request) -> Response:
        data = CreateBackupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        backup = creating.new_backup(
            reason=data.validated_data["reason"], user=request.user
        )
        transaction.on_commit(lambda: tasks.create_backup_task.delay(backup.pk))
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        backup = self.get_object()
        if backup.status not in (Backup.Status.CREATED, Backup.Status.VERIFIED):
            return Response(
                {
                    "detail": f"Backup {backup.name} is {backup.status}; only a created or "
                    "verified backup can be verified."
                },
                status=status.HTTP_409_CONFLICT,
            )
        transaction.on_commit(lambda: tasks.verify_backup_task.delay(backup.pk))
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        backup = self.get_object()
        data = RestoreSerializer(data=request.data, context={"backup": backup})
        data.is_valid(raise_exception=True)
        user_id = request.user.pk
        reason = data.validated_data["reason"]
        transaction.on_commit(
            lambda: tasks.restore_backup_task.delay(backup.pk, user_id, reason)
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
        backup = self.get_object()
        refusal = copying.copy_refusal(backup, copy_target())
        if refusal:
            return Response({"detail": refusal}, status=status.HTTP_409_CONFLICT)
        user_id = request.user.pk
        transaction.on_commit(lambda: tasks.copy_backup_task.delay(backup.pk, user_id))
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
        backup = self.get_object()
        refusal = copying.fetch_refusal(backup, copy_target())
        if refusal:
            return Response({"detail": refusal}, status=status.HTTP_409_CONFLICT)
        user_id = request.user.pk
        transaction.on_commit(lambda: tasks.fetch_backup_task.delay(backup.pk, user_id))
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        backup = self.get_object()
        try:
            retention.delete_backup(backup.pk, user=request.user, request=request)
        except BackupError as e:
            return Response({"detail": str(e)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)
