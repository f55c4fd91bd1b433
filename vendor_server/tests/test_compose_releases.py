"""Publishing compose releases: the compose file checked, tags pinned, changes shown."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clms_updates import manifest as m
from vendor_server import publishing
from vendor_server.models import Release
from vendor_server.publishing import PublishError, ReleaseDraft

pytestmark = [pytest.mark.django_db, pytest.mark.services]

RELEASES = "/admin/vendor_server/release/"

WEB_ONLY = """\
x-clms-settings:
  CLMS_DATABASE_URL: {{description: The library database, required: true, secret: true}}
x-clms-migration: {{service: web, command: [migrate]}}
services:
  web:
    image: {web}
    environment:
      CLMS_DATABASE_URL: ${{CLMS_DATABASE_URL}}
"""

WITH_SEARCH = (
    WEB_ONLY.replace(
        "x-clms-migration",
        "  SEARCH_API_KEY: {{description: The search key, required: true, secret: true}}\n"
        "x-clms-migration",
    )
    + """\
  search:
    image: {web}
    command: [search]
    environment:
      SEARCH_API_KEY: ${{SEARCH_API_KEY}}
    volumes: [search-index:/var/lib/search]
volumes:
  search-index: {{}}
"""
)


def tag_of(image: str) -> str:
    """The same image by its tag (the factory pushes it as ``latest``)."""
    return image.split("@", 1)[0] + ":latest"


def publish_compose(version: str, text: str, **extra: object) -> Release:
    return publishing.publish(
        ReleaseDraft(version=version, compose_text=text, **extra),  # type: ignore[arg-type]
        published_by="tests",
    )


@pytest.fixture
def staff(vendor_staff) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(vendor_staff)
    return client


def admin_form(version: str, compose: str, **extra: str) -> dict[str, str]:
    return {
        "version": version,
        "channel": "stable",
        "changelog": "Adds search",
        "rollout_percent": "100",
        "compose_file": compose,
        "health_path": "/health",
        "health_expected_status": "200",
        "health_successes": "3",
        "health_timeout_seconds": "60",
        **extra,
    }


def test_a_compose_release_is_signed_as_a_format_2_manifest(vendor_key, image) -> None:
    release = publish_compose("1.0.0", WEB_ONLY.format(web=image))

    manifest = m.ReleaseManifest.from_dict(json.loads(release.manifest_json))
    assert manifest.format == 2
    assert manifest.compose is not None
    assert manifest.compose["services"]["web"]["image"] == image
    assert [i.reference for i in manifest.images] == [image]
    assert [s.name for s in manifest.settings] == ["CLMS_DATABASE_URL"]
    assert manifest.migration == m.Migration("web", ("migrate",))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("services: [web]\n", "services"),
        ("x: [unclosed\n", "not valid YAML"),
        (
            "services:\n  web:\n    image: {web}\n    environment:\n"
            "      X: ${{NOT_DECLARED}}\n",
            "NOT_DECLARED",
        ),
        (
            "services:\n  web:\n    image: {web}\n    volumes: [data:/data]\n",
            "data",
        ),
        ("services:\n  web:\n    image: {tag}\n", "is a tag, not a digest"),
        ("services:\n  web:\n    image: {web}\n    build: .\n", "build"),
    ],
    ids=[
        "not-a-mapping",
        "bad-yaml",
        "undeclared-variable",
        "undeclared-volume",
        "tag",
        "build-context",
    ],
)
def test_a_compose_file_with_a_problem_is_refused_saying_what(
    vendor_key, image, text: str, why: str
) -> None:
    with pytest.raises(PublishError) as refused:
        publish_compose("1.0.0", text.format(web=image, tag=tag_of(image)))
    assert why in str(refused.value)
    assert not Release.objects.exists()


def test_tags_are_pinned_only_when_asked_and_shown_before_signing(
    vendor_key, image
) -> None:
    draft = ReleaseDraft(
        version="1.0.0",
        compose_text=WEB_ONLY.format(web=tag_of(image)),
        resolve_tags=True,
    )

    shown = publishing.preview(draft)

    assert shown.problems == []
    assert shown.pinned == [f"web: {tag_of(image)} -> {image}"]
    assert image in shown.compose_text
    assert tag_of(image) not in shown.compose_text
    assert not Release.objects.exists()
    # Publishing the text that was shown signs exactly those digests.
    release = publish_compose("1.0.0", shown.compose_text)
    assert release.compose["services"]["web"]["image"] == image


def test_the_admin_shows_pins_and_changes_then_signs_on_confirmation(
    staff, vendor_key, image
) -> None:
    publish_compose("1.0.0", WEB_ONLY.format(web=image))
    first = staff.post(
        RELEASES + "add/",
        admin_form("1.1.0", WITH_SEARCH.format(web=tag_of(image)), resolve_tags="on"),
    )

    page = first.content.decode()
    assert first.status_code == 200
    assert "Nothing is signed yet" in page
    assert f"Pinned: web: {tag_of(image)} -&gt; {image}" in page
    assert "Changes against 1.0.0: service search added" in page
    assert "Changes against 1.0.0: new setting SEARCH_API_KEY" in page
    assert Release.objects.count() == 1
    shown = first.context["adminform"].form["compose_file"].value()
    assert image in shown and tag_of(image) not in shown

    confirmed = staff.post(
        RELEASES + "add/",
        admin_form("1.1.0", shown, confirmed="on"),
        follow=True,
    )

    assert confirmed.status_code == 200
    release = Release.objects.get(version="1.1.0")
    assert sorted(release.compose["services"]) == ["search", "web"]
    assert {i["reference"] for i in release.images} == {image}
    change = staff.get(f"{RELEASES}{release.pk}/change/").content.decode()
    assert "against 1.0.0" in change
    assert "service search added" in change
    assert "volume search-index added" in change


def test_a_confirmed_form_never_resolves_a_tag_it_did_not_show(
    staff, vendor_key, image
) -> None:
    answer = staff.post(
        RELEASES + "add/",
        admin_form(
            "1.0.0",
            WEB_ONLY.format(web=tag_of(image)),
            resolve_tags="on",
            confirmed="on",
        ),
    )
    assert "is a tag, not a digest" in answer.content.decode()
    assert not Release.objects.exists()


def test_removing_a_service_is_listed_as_such(staff, vendor_key, image) -> None:
    publish_compose("1.1.0", WITH_SEARCH.format(web=image))
    release = publish_compose("1.2.0", WEB_ONLY.format(web=image))

    change = staff.get(f"{RELEASES}{release.pk}/change/").content.decode()

    assert "service search removed (its volumes stay" in change
    assert "volume search-index no longer declared" in change


def test_staff_publish_over_the_api_with_a_token_and_a_dry_run_first(
    vendor_staff, outsider, vendor_key, image
) -> None:
    api = APIClient()
    url = "/vendor/api/v1/staff/releases"
    body = {"version": "1.0.0", "compose": WEB_ONLY.format(web=tag_of(image))}
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=outsider)}")
    assert api.post(url, body, format="json").status_code == 403
    api.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=vendor_staff)}"
    )

    refused = api.post(url, body, format="json")
    dry = api.post(url, {**body, "resolve_tags": True, "dry_run": True}, format="json")

    assert refused.status_code == 400
    assert "is a tag, not a digest" in refused.json()["detail"]
    assert dry.status_code == 200, dry.content
    assert dry.json()["pinned"] == [f"web: {tag_of(image)} -> {image}"]
    assert not Release.objects.exists()
    published = api.post(
        url, {"version": "1.0.0", "compose": dry.json()["compose"]}, format="json"
    )
    assert published.status_code == 201, published.content
    release = Release.objects.get()
    assert published.json()["manifest_sha256"] == release.manifest_sha256
    assert release.compose["services"]["web"]["image"] == image


def test_publish_release_dry_run_prints_pins_and_changes_and_signs_nothing(
    vendor_key, image, tmp_path, capsys
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(WITH_SEARCH.format(web=tag_of(image)))
    manifest = tmp_path / "release.json"
    manifest.write_text(json.dumps({"version": "1.1.0", "changelog": "search"}))
    pinned = tmp_path / "pinned.yaml"
    publish_compose("1.0.0", WEB_ONLY.format(web=image))

    call_command(
        "publish_release",
        "--manifest",
        str(manifest),
        "--compose",
        str(compose),
        "--resolve-tags",
        "--dry-run",
        "--write-pinned",
        str(pinned),
    )

    out = capsys.readouterr().out
    assert f"Would pin web: {tag_of(image)} -> {image}" in out
    assert "service search added" in out
    assert "nothing was signed or published" in out
    assert Release.objects.count() == 1
    with pytest.raises(CommandError, match="is a tag, not a digest"):
        call_command(
            "publish_release", "--manifest", str(manifest), "--compose", str(compose)
        )
    call_command(
        "publish_release", "--manifest", str(manifest), "--compose", str(pinned)
    )
    assert Release.objects.get(version="1.1.0").images[0]["reference"] == image


# ---------------------------------------------------------------------------
# Source releases
# ---------------------------------------------------------------------------

BUILT = """\
services:
  web:
    image: clms/web:2.0.0-source
    command: [serve]
"""


def source_folder(tmp_path, dockerfile: str):  # type: ignore[no-untyped-def]
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "app").mkdir()
    (folder / "app" / "main.py").write_text("print('hello')\n")
    return folder


def source_draft(folder, base: str) -> ReleaseDraft:  # type: ignore[no-untyped-def]
    return ReleaseDraft(
        version="2.0.0",
        compose_text=BUILT,
        source={
            "image": "clms/web:2.0.0-source",
            "services": ["web"],
            "base_images": [base],
        },
        source_dir=folder,
    )


def test_a_source_release_signs_its_tree_and_its_base_images(
    vendor_key, image, tmp_path
) -> None:
    from clms_updates.manifest.bundle import tree_digest, tree_entries

    folder = source_folder(tmp_path, f"FROM {image}\nCOPY app /app\n")

    release = publishing.publish(source_draft(folder, image), published_by="tests")

    manifest = m.ReleaseManifest.from_dict(json.loads(release.manifest_json))
    assert manifest.source is not None
    assert manifest.source.sha256 == tree_digest(tree_entries(folder))
    assert [b.reference for b in manifest.source.base_images] == [image]
    assert manifest.source.base_images[0].config.startswith("sha256:")
    assert manifest.images == ()


def test_a_source_release_whose_dockerfile_cannot_build_offline_is_refused(
    vendor_key, image, tmp_path
) -> None:
    folder = source_folder(
        tmp_path, f"FROM {image} AS build\nFROM alpine:3.19\nCOPY --from=build /a /a\n"
    )
    with pytest.raises(PublishError) as refused:
        publishing.publish(source_draft(folder, image), published_by="tests")
    assert "Dockerfile line 2 (`FROM alpine:3.19`)" in str(refused.value)
    assert not Release.objects.exists()


def test_build_bundle_refuses_a_source_folder_that_is_not_the_signed_one(
    vendor_key, image, tmp_path
) -> None:
    folder = source_folder(tmp_path, f"FROM {image}\nCOPY app /app\n")
    publishing.publish(source_draft(folder, image), published_by="tests")
    (folder / "app" / "main.py").write_text("print('changed after publishing')\n")

    with pytest.raises(CommandError, match="is not the one the release signed"):
        call_command("build_bundle", "2.0.0", output=tmp_path / "b.zip", source=folder)
    with pytest.raises(CommandError, match="give its source folder"):
        call_command("build_bundle", "2.0.0", output=tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists()
