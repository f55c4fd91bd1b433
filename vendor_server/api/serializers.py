"""Validation of what school agents send."""

from __future__ import annotations

from rest_framework import serializers

from vendor_server.models import Outcome


class UpdateReportSerializer(serializers.Serializer):
    """The body of ``POST reports``."""

    run_id = serializers.IntegerField(min_value=0)
    from_version = serializers.CharField(max_length=64, allow_blank=True)
    to_version = serializers.CharField(max_length=64)
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    duration_seconds = serializers.IntegerField(min_value=0, default=0)
    error_code = serializers.CharField(max_length=100, allow_blank=True, default="")
    log_excerpt = serializers.CharField(
        max_length=4000, allow_blank=True, default="", trim_whitespace=False
    )
