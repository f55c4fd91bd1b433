"""OpenAPI description of the school API for drf-spectacular.

The views answer signed documents and files rather than model serializers, so
their shapes are described here; importing this module registers the
authentication scheme.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers

from vendor_server.api.serializers import UpdateReportSerializer


class SchoolKeyScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <school API key>``."""

    target_class = "vendor_server.api.auth.SchoolKeyAuthentication"
    name = "schoolKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The school's API key, shown once when the school was created.",
        }


class SignedIndexSerializer(serializers.Serializer):
    """A signed index: canonical JSON as a string and its detached signature."""

    index = serializers.CharField(help_text="Canonical index JSON (UTF-8).")
    signature = serializers.CharField(help_text="Armored detached GPG signature.")


class SignedManifestSerializer(serializers.Serializer):
    """A signed release manifest."""

    manifest = serializers.CharField(help_text="Canonical manifest JSON (UTF-8).")
    signature = serializers.CharField(help_text="Armored detached GPG signature.")


class ReportCreatedSerializer(serializers.Serializer):
    """The id of a recorded report."""

    id = serializers.IntegerField()


NOT_MODIFIED = OpenApiResponse(
    description="Unchanged since the ETag sent in If-None-Match."
)

index_schema = extend_schema(
    summary="This school's signed release index (index.json / .asc: raw forms)",
    responses={200: SignedIndexSerializer, 304: NOT_MODIFIED},
)
manifest_schema = extend_schema(
    summary="A release's signed manifest (manifest.json / .asc: raw forms)",
    responses={
        200: SignedManifestSerializer,
        304: NOT_MODIFIED,
        404: OpenApiTypes.OBJECT,
    },
)
bundle_schema = extend_schema(
    summary="The release's offline ZIP bundle (supports Range)",
    responses={
        (200, "application/zip"): OpenApiTypes.BINARY,
        (206, "application/zip"): OpenApiTypes.BINARY,
        404: OpenApiTypes.OBJECT,
        416: OpenApiResponse(description="The requested range is outside the file."),
    },
)
keys_schema = extend_schema(
    summary="The vendor's armored public key(s)",
    responses={(200, "text/plain"): OpenApiTypes.STR},
)
reports_schema = extend_schema(
    summary="Report the outcome of an update attempt",
    request=UpdateReportSerializer,
    responses={201: ReportCreatedSerializer},
)
