"""The school API: signed index, manifests, bundles, keys and update reports.

Every view authenticates the school's key (``SchoolKeyAuthentication``), which
also records the check-in; the work happens in the logic modules.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clms_updates import contract
from clms_updates.actions import VIA_API, Actor
from clms_updates.api import BoundedJSONParser
from clms_updates.authentication import TokenAuthentication
from clms_updates.contract import INDEX_FORMAT_HEADER
from clms_updates.manifest.schema import CHANNEL_INDEX_FORMAT
from vendor_server import actions, bundlestore, indexing, keys
from vendor_server.api import schema
from vendor_server.api.auth import (
    IsSchool,
    SchoolKeyAuthentication,
    SchoolRateThrottle,
    Throttled429,
)
from vendor_server.api.serializers import PublishSerializer, UpdateReportSerializer
from vendor_server.models import Release
from vendor_server.publishing import PublishError, ReleaseDraft, preview
from vendor_server.rollouts import is_visible, listed
from vendor_server.roots import published_roots
from vendor_server.schools import KeyOwner

logger = logging.getLogger(__name__)


class JSONOnlyNegotiation(BaseContentNegotiation):
    """Agents speak JSON only: skip parsing ``Accept`` on every poll."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: Any = None
    ) -> Any:
        return renderers[0], renderers[0].media_type


class SchoolAPIView(APIView):
    """Base of every school endpoint: key auth, per-school throttle."""

    authentication_classes = [SchoolKeyAuthentication]
    permission_classes = [IsSchool]
    throttle_classes = [SchoolRateThrottle]
    # Agents speak JSON only; fewer renderers make content negotiation cheaper.
    renderer_classes = [JSONRenderer]
    parser_classes = [BoundedJSONParser]
    content_negotiation_class = JSONOnlyNegotiation

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise Throttled429(int(wait or 1))

    def owner(self, request: Request) -> KeyOwner:
        assert isinstance(request.auth, KeyOwner)
        return request.auth

    def product(self, request: Request) -> str:
        """``?product=``: CLMS (the default) or the agent itself; else a JSON 404."""
        product = request.query_params.get("product") or settings.VENDOR_PRODUCT
        if product not in indexing.products():
            raise NotFound(
                {
                    "detail": f"This vendor publishes no product {product[:64]!r} "
                    f"(only {', '.join(indexing.products())}).",
                    "code": "product_not_found",
                }
            )
        return product


class IndexView(SchoolAPIView):
    """GET index / index.json / index.json.asc: this school's signed index."""

    form = "json"

    @schema.index_schema
    def get(self, request: Request) -> HttpResponse:
        owner = self.owner(request)
        if request.headers.get(INDEX_FORMAT_HEADER) == str(CHANNEL_INDEX_FORMAT):
            document = indexing.signed_channel_index(
                owner.channel, self.product(request)
            )
        else:  # an agent from before channel indexes
            document = indexing.signed_index_for(
                owner.token, owner.channel, self.product(request)
            )
        return contract.signed_document(
            request,
            field="index",
            text=document.text,
            signature=document.signature,
            etag=document.etag,
            form=self.form,
        )


def visible_release(owner: KeyOwner, version: str, product: str) -> Release:
    """The release ``version`` of ``product`` if this school may see it, else a 404."""
    release = Release.objects.listed().of(product).filter(version=version).first()
    if release is None or not is_visible(listed(release), owner.token, owner.channel):
        raise NotFound(
            {
                "detail": f"Release {version} is not published for this school (unknown, "
                "disabled, paused, on another channel or not yet rolled out to it).",
                "code": "release_not_found",
            }
        )
    return release


class ManifestView(SchoolAPIView):
    """GET releases/<version>/manifest (and .json / .json.asc)."""

    form = "json"

    @schema.manifest_schema
    def get(self, request: Request, version: str) -> HttpResponse:
        release = visible_release(self.owner(request), version, self.product(request))
        return contract.signed_document(
            request,
            field="manifest",
            text=release.manifest_json,
            signature=release.manifest_signature,
            etag=f'"m{release.manifest_sha256[:24]}"',
            form=self.form,
        )


class BundleView(SchoolAPIView):
    """GET releases/<version>/bundle: the offline ZIP, streamed, with Range for resume."""

    @schema.bundle_schema
    def get(
        self, request: Request, version: str
    ) -> HttpResponse | StreamingHttpResponse:
        release = visible_release(self.owner(request), version, self.product(request))
        path = Path(settings.VENDOR_BUNDLE_DIR) / release.bundle_file
        if not release.bundle_file or not path.is_file():
            raise NotFound(
                {
                    "detail": f"Release {version} has no offline bundle; install it "
                    "from the registry images instead.",
                    "code": "bundle_not_found",
                }
            )
        if bundlestore.enabled():
            try:
                return HttpResponseRedirect(bundlestore.presigned_url(release, path))
            except bundlestore.BundleStoreError as e:
                logger.warning("%s; serving the bundle from this server", e)
        return contract.file_download(
            request,
            path,
            etag=f'"b{release.bundle_sha256[:24]}"',
            filename=path.name,
            sha256=release.bundle_sha256,
        )


class KeysView(SchoolAPIView):
    """GET keys: the vendor's armored public key(s)."""

    @schema.keys_schema
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(keys.export_public_key(), content_type="text/plain")


class RootsView(SchoolAPIView):
    """GET roots?after=N: the published roots of trust after version N, in order."""

    @schema.roots_schema
    def get(self, request: Request) -> HttpResponse:
        after = contract.roots_after(request)
        if not isinstance(after, int):
            return after
        return contract.roots(
            published_roots(after).values_list("version", "root_json", "signature")
        )


class ReportsView(SchoolAPIView):
    """POST reports: what happened when the school tried a release."""

    @schema.reports_schema
    def post(self, request: Request) -> Response:
        serializer = UpdateReportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        report = actions.record_report(self.owner(request).school_id, data)
        return Response({"id": report.id}, status=status.HTTP_201_CREATED)


class IsReleasePublisher(BasePermission):
    """Vendor staff allowed to add releases (``vendor_server.add_release``)."""

    message = "Publishing needs a staff account with the permission to add releases."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and user.has_perm("vendor_server.add_release")
        )


class StaffReleasesView(APIView):
    """POST staff/releases: publish a release (staff token or session)."""

    authentication_classes = [SessionAuthentication, TokenAuthentication]
    permission_classes = [IsReleasePublisher]

    @schema.publish_schema
    def post(self, request: Request) -> Response:
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        draft = ReleaseDraft(
            version=data["version"],
            channel=data["channel"],
            changelog=data["changelog"],
            critical=data["critical"],
            force_after=data["force_after"],
            min_version=data["min_version"],
            rollout_percent=data["rollout_percent"],
            images=[dict(i) for i in data["images"]],
            migration=data["migration"],
            health_check=dict(data["health"]),
            compose_text=data["compose"],
            resolve_tags=data["resolve_tags"],
        )
        if data["dry_run"]:
            shown = preview(draft)
            if shown.problems:
                raise PublishError(shown.problems)
            return Response(
                {
                    "pinned": shown.pinned,
                    "compose": shown.compose_text,
                    "previous": shown.previous,
                    "changes": shown.changes,
                }
            )
        release = actions.publish_release(
            draft, actor=Actor.from_request(request, VIA_API)
        )
        return Response(
            {
                "version": release.version,
                "channel": release.channel,
                "manifest_sha256": release.manifest_sha256,
                "pinned": draft.pinned,
            },
            status=status.HTTP_201_CREATED,
        )
