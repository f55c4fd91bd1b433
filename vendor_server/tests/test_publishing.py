"""Publishing: every check refuses bad input clearly, and nothing is half-published."""

from __future__ import annotations

import json
import subprocess
import zipfile
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from clms_updates.manifest import Image, ReleaseManifest, parse_manifest
from devtools import services as localservices
from vendor_server import indexing, keys
from vendor_server.models import Release
from vendor_server.publishing import PublishError, publish
from vendor_server.tests.factories import draft, make_release, push_image

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def make_bundle(path: Path, version: str, image: str, *, sign: bool = True) -> Path:
    now = timezone.now()
    manifest = ReleaseManifest(
        product="clms",
        version=version,
        channel="stable",
        released_at=now,
        expires=now + timedelta(days=30),
        images=(Image("web", image),),
    )
    data = manifest.to_bytes()
    signature = keys.sign(data) if sign else keys.sign(b"something else")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", data)
        archive.writestr("manifest.json.asc", signature)
        archive.writestr("images/web.tar", b"image bytes")
    return path


def assert_nothing_published(sequence_before: int, settings) -> None:  # type: ignore[no-untyped-def]
    assert Release.objects.count() == 0
    assert indexing.index_state().sequence == sequence_before
    bundles = Path(settings.VENDOR_BUNDLE_DIR)
    assert not bundles.exists() or not any(bundles.rglob("*.zip"))


def test_a_release_is_published_signed_and_bumps_the_index(vendor_key, image) -> None:
    before = indexing.index_state().sequence
    release = make_release("1.2.0", image, changelog="* fixes")
    assert parse_manifest(release.manifest_bytes).images[0].reference == image
    assert indexing.index_state().sequence == before + 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": "1.2"}, "is not a SemVer 2.0 version"),
        ({"force_after": "past", "critical": True}, "is in the past"),
        ({"images": [{"service": "web", "reference": "clms/web:1.2.0"}]}, "by tag"),
        ({"min_version": "9.0.0"}, "min_version must be lower"),
        ({"critical": True}, "needs a deadline"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    vendor_key, image, settings, changes, message
) -> None:
    before = indexing.index_state().sequence
    version = changes.pop("version", "1.2.0")
    if changes.get("force_after") == "past":
        changes["force_after"] = timezone.now() - timedelta(hours=1)
    bad = draft(version, image, **changes)
    with pytest.raises(PublishError, match=message):
        publish(bad)
    assert_nothing_published(before, settings)


def test_a_duplicate_version_is_refused(vendor_key, image) -> None:
    make_release("1.2.0", image)
    with pytest.raises(PublishError, match="already published"):
        make_release("1.2.0", image)
    assert Release.objects.count() == 1


def test_an_image_missing_from_the_registry_is_refused_naming_it(
    vendor_key, registry_address, settings
) -> None:
    before = indexing.index_state().sequence
    missing = f"{registry_address}/clms/web@sha256:{'b' * 64}"
    with pytest.raises(PublishError) as caught:
        make_release("1.2.0", missing)
    assert f"image {missing} is not in the registry" in str(caught.value)
    assert_nothing_published(before, settings)


def test_registry_with_basic_auth_needs_the_configured_credentials(
    vendor_key, settings, tmp_path: Path
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(
        subprocess.run(
            ["htpasswd", "-Bbn", "vendor", "s3cret"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    service = localservices.start_registry(tmp_path / "registry", htpasswd=htpasswd)
    try:
        address = service.env["CLMS_TEST_REGISTRY"]
        reference = push_image(address, auth=("vendor", "s3cret"))
        with pytest.raises(PublishError, match="refused access"):
            make_release("1.2.0", reference)
        settings.VENDOR_REGISTRY_USERNAME = "vendor"
        settings.VENDOR_REGISTRY_PASSWORD = "s3cret"
        assert make_release("1.2.0", reference).version == "1.2.0"
    finally:
        service.stop()


def test_a_valid_bundle_is_stored_with_its_checksum(
    vendor_key, image, tmp_path, settings
) -> None:
    bundle = make_bundle(tmp_path / "clms-1.2.0.zip", "1.2.0", image)
    release = make_release("1.2.0", image, bundle_path=bundle, bundle_name=bundle.name)
    manifest = parse_manifest(release.manifest_bytes)
    assert manifest.bundle is not None
    assert manifest.bundle.size == bundle.stat().st_size
    assert (
        Path(settings.VENDOR_BUNDLE_DIR) / release.bundle_file
    ).read_bytes() == bundle.read_bytes()


def test_a_bundle_that_is_not_a_zip_is_refused(
    vendor_key, image, tmp_path, settings
) -> None:
    before = indexing.index_state().sequence
    bundle = tmp_path / "clms-1.2.0.zip"
    bundle.write_bytes(b"not a zip at all")
    with pytest.raises(PublishError, match="not a valid ZIP"):
        make_release("1.2.0", image, bundle_path=bundle)
    assert_nothing_published(before, settings)


def test_a_bundle_whose_signature_does_not_verify_is_refused(
    vendor_key, image, tmp_path, settings
) -> None:
    before = indexing.index_state().sequence
    bundle = make_bundle(tmp_path / "b.zip", "1.2.0", image, sign=False)
    with pytest.raises(PublishError, match="does not verify"):
        make_release("1.2.0", image, bundle_path=bundle)
    assert_nothing_published(before, settings)


def test_a_bundle_of_another_release_is_refused(
    vendor_key, image, tmp_path, settings
) -> None:
    bundle = make_bundle(tmp_path / "b.zip", "1.1.0", image)
    with pytest.raises(PublishError, match="belongs to another release"):
        make_release("1.2.0", image, bundle_path=bundle)
    assert Release.objects.count() == 0


def test_an_oversized_bundle_is_refused(vendor_key, image, tmp_path, settings) -> None:
    settings.VENDOR_MAX_BUNDLE_MB = 1
    before = indexing.index_state().sequence
    bundle = tmp_path / "big.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("filler", bytes(2 * 1024 * 1024))
    with pytest.raises(PublishError, match="over the 1 MiB limit"):
        make_release("1.2.0", image, bundle_path=bundle)
    assert_nothing_published(before, settings)


def test_publish_release_command_publishes_and_refuses_with_reasons(
    vendor_key, image, tmp_path
) -> None:
    manifest = tmp_path / "release.json"
    manifest.write_text(
        json.dumps(
            {
                "version": "2.0.0",
                "channel": "beta",
                "changelog": "## New\n* things",
                "images": [{"service": "web", "reference": image}],
                "migration": {"service": "web", "command": ["manage", "migrate"]},
                "health": {"path": "/healthz"},
            }
        )
    )
    out = StringIO()
    call_command("publish_release", "--manifest", str(manifest), stdout=out)
    assert "Published 2.0.0 (beta)" in out.getvalue()
    assert parse_manifest(Release.objects.get().manifest_bytes).migration is not None
    with pytest.raises(CommandError, match="already published"):
        call_command("publish_release", "--manifest", str(manifest), stdout=StringIO())
    manifest.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("publish_release", "--manifest", str(manifest), stdout=StringIO())


def test_a_release_published_held_back_is_in_no_index_until_enabled(
    vendor_key, image, tmp_path
) -> None:
    from clms_updates.actions import Actor
    from vendor_server import actions, indexing

    manifest = tmp_path / "release.json"
    manifest.write_text(
        json.dumps(
            {
                "version": "2.1.0",
                "channel": "stable",
                "images": [{"service": "web", "reference": image}],
                "health": {"path": "/healthz"},
            }
        )
    )
    out = StringIO()
    call_command(
        "publish_release", "--manifest", str(manifest), "--held-back", stdout=out
    )
    assert "held back until enabled" in out.getvalue()
    release = Release.objects.get(version="2.1.0")
    assert not release.enabled

    def listed() -> set[int]:
        return {r.id for r in indexing.listed_releases(indexing.current_sequence())}

    assert release.pk not in listed()
    actions.set_enabled(release.pk, True, actor=Actor.system())
    assert release.pk in listed()
