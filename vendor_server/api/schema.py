"""OpenAPI description of the school API for drf-spectacular.

The views answer signed documents and files rather than model serializers, so
their shapes are described here; importing this module registers the
authentication scheme.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from vendor_server.api.serializers import PublishSerializer, UpdateReportSerializer


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


class RootsSerializer(serializers.Serializer):
    # "root" is a Field attribute, so the item is declared inline.
    roots = inline_serializer(
        "SignedRoot",
        fields={
            "version": serializers.IntegerField(),
            "root": serializers.CharField(
                help_text="The canonical root JSON, as signed."
            ),
            "signature": serializers.CharField(
                help_text="Armored detached signatures over `root`, one after another."
            ),
        },
        many=True,
    )


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
roots_schema = extend_schema(
    summary="The published roots of trust after a version, in order",
    parameters=[
        OpenApiParameter(
            "after",
            int,
            description="The root version the agent holds (0: none).",
        )
    ],
    responses={200: RootsSerializer},
)
reports_schema = extend_schema(
    summary="Report the outcome of an update attempt",
    request=UpdateReportSerializer,
    responses={201: ReportCreatedSerializer},
)


class PublishedSerializer(serializers.Serializer):
    """A release just published and signed."""

    version = serializers.CharField()
    channel = serializers.CharField()
    manifest_sha256 = serializers.CharField()
    pinned = serializers.ListField(
        child=serializers.CharField(), help_text="Tags pinned: service: tag -> digest."
    )


class PublishPreviewSerializer(serializers.Serializer):
    """What publishing would sign (``dry_run``): nothing was signed or saved."""

    pinned = serializers.ListField(child=serializers.CharField())
    compose = serializers.CharField(
        help_text="The compose file with the pinned digests: publish this text to "
        "sign exactly what was shown."
    )
    previous = serializers.CharField(help_text="The release compared against.")
    changes = serializers.ListField(child=serializers.CharField())


publish_schema = extend_schema(
    summary="Publish a release (vendor staff; token or session)",
    description="An image-only release (images) or a compose release (compose: "
    "the vendor's compose file). Every problem is answered at once as 400; "
    "nothing is signed or saved then. With dry_run nothing is signed either: "
    "the answer shows the pinned digests and the changes against the previous "
    "release.",
    request=PublishSerializer,
    responses={
        201: PublishedSerializer,
        200: PublishPreviewSerializer,
        400: OpenApiTypes.OBJECT,
        403: OpenApiTypes.OBJECT,
    },
)
