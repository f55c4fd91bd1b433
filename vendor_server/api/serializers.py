"""Validation of what school agents send."""

from __future__ import annotations

from rest_framework import serializers

from vendor_server import indexing
from vendor_server.models import Outcome, RunKind


class UpdateReportSerializer(serializers.Serializer):
    """The body of ``POST reports``."""

    run_id = serializers.IntegerField(min_value=0, max_value=2**63 - 1)
    product = serializers.CharField(
        max_length=64,
        default="",
        allow_blank=True,
        help_text="The product updated: CLMS (empty, the default) or the agent itself.",
    )
    from_version = serializers.CharField(max_length=64, allow_blank=True)
    to_version = serializers.CharField(max_length=64)
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    kind = serializers.ChoiceField(
        choices=RunKind.choices,
        default=RunKind.UPDATE,
        help_text="update (the default) or rollback: an admin went back by hand from "
        "from_version to to_version.",
    )
    duration_seconds = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, default=0
    )
    error_code = serializers.CharField(max_length=100, allow_blank=True, default="")
    log_excerpt = serializers.CharField(
        max_length=4000, allow_blank=True, default="", trim_whitespace=False
    )

    def validate_product(self, value: str) -> str:
        if value and value not in indexing.products():
            raise serializers.ValidationError(
                f"This vendor publishes no product {value!r} (only "
                f"{', '.join(indexing.products())})."
            )
        return value


class ImageSerializer(serializers.Serializer):
    service = serializers.CharField(max_length=63)
    reference = serializers.CharField(max_length=512)


class PublishSerializer(serializers.Serializer):
    """The body of ``POST staff/releases``: an image-only or a compose release."""

    version = serializers.CharField(max_length=64)
    channel = serializers.CharField(max_length=16, default="stable")
    changelog = serializers.CharField(allow_blank=True, default="")
    critical = serializers.BooleanField(default=False)
    force_after = serializers.DateTimeField(allow_null=True, default=None)
    min_version = serializers.CharField(max_length=64, allow_blank=True, default="")
    rollout_percent = serializers.IntegerField(min_value=0, max_value=100, default=100)
    compose = serializers.CharField(
        allow_blank=True,
        default="",
        help_text="The vendor's compose file (YAML, with its x-clms-* parts).",
    )
    resolve_tags = serializers.BooleanField(
        default=False,
        help_text="Pin images given by tag to the registry's digest now.",
    )
    dry_run = serializers.BooleanField(
        default=False,
        help_text="Only check: answer what would be signed (pinned digests, the "
        "compose file with them, the changes against the previous release).",
    )
    images = ImageSerializer(many=True, required=False, default=list)
    migration = serializers.DictField(required=False, allow_null=True, default=None)
    health = serializers.DictField(required=False, default=dict)
