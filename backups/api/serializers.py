"""Serializers of the backups API."""

from __future__ import annotations

from rest_framework import serializers

from backups.models import Backup


class BackupSerializer(serializers.ModelSerializer):
    """A backup as the API shows it (read-only; changes go through actions)."""

    locations = serializers.ListField(child=serializers.CharField(), read_only=True)
    progress_url = serializers.SerializerMethodField()

    class Meta:
        model = Backup
        fields = [
            "id",
            "name",
            "status",
            "reason",
            "hold",
            "engine",
            "file_name",
            "size",
            "sha256",
            "clms_version",
            "server_version",
            "manifest",
            "copies",
            "locations",
            "failure_reason",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "verified_at",
            "restored_at",
            "current_step",
            "percent",
            "message",
            "progress_url",
        ]
        read_only_fields = fields

    def get_progress_url(self, obj: Backup) -> str:
        return f"/ws/progress/backup/{obj.pk}/"


class CreateBackupSerializer(serializers.Serializer):
    """Input for POST /api/backups/."""

    reason = serializers.CharField(
        max_length=200, required=False, default="manual (API)"
    )


class RestoreSerializer(serializers.Serializer):
    """Input for a restore: the backup's name typed again, and why."""

    confirm = serializers.CharField()
    reason = serializers.CharField(max_length=500, required=False, default="")
