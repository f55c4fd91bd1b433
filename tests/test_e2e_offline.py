"""Acceptance: an installation with no connection updates from a bundle on a USB stick.

The school runs the demo CLMS stack at 1.0.0. The real vendor server publishes
1.0.2 naming images in a registry of its own and writes the release's bundle
with ``manage.py build_bundle`` (signed manifest, signed contents list, the
images as ``docker save`` archives). Then that registry is stopped, the images
are removed from the engine, and the agent's vendor URL points nowhere. The
bundle is copied into the offline folder; the next check finds it, verifies it, loads the images
and matches them to the signed digests; the admin applies it through the same
pipeline as an online update, and the services run 1.0.2 and answer health.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from django.core.management import call_command
from django.test import Client

from devtools.demo_stack import health, releases
from devtools.demo_stack.images import LOCAL_REPOSITORY
from devtools.services import Service, start_registry
from tests.e2e_support import FAST_HEALTH, School, school_fixture  # noqa: F401
from updates import offline, runtime
from updates.compose import stack
from updates.models import AgentState, AvailableRelease, OfflineBundle, UpdateRun
from updates.pipeline import execute_run
from vendor_server.publishing import ReleaseDraft, publish

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.docker,
    pytest.mark.e2e,
]


@pytest.fixture
def district_registry(tmp_path: Path) -> Iterator[Service]:
    """A registry of its own, so that the test can stop it (the one the release names)."""
    service = start_registry(tmp_path / "district-registry")
    yield service
    service.stop()


@pytest.fixture
def offline_school(school: School, settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The school with an offline folder (the USB stick) and a never-used keyring."""
    settings.UPDATES_SOURCES = ["mirror", "vendor", "offline"]
    settings.UPDATES_MIRROR_URL = ""
    settings.UPDATES_OFFLINE_DIR = tmp_path / "usb"
    settings.UPDATES_QUARANTINE_DIR = tmp_path / "quarantine"
    settings.UPDATES_OFFLINE_WORK_DIR = tmp_path / "offline-work"
    settings.UPDATES_OFFLINE_DIR.mkdir()
    settings.UPDATES_OFFLINE_SETTLE_SECONDS = 0
    return school


def push_to(registry: str, source: str) -> str:
    """Copy the demo image ``source`` into ``registry``; return its digest reference."""
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
    repository = f"{registry}/clms/app"
    client.images.get(source).tag(repository, tag="1.0.2")
    digest = ""
    for event in client.api.push(repository, tag="1.0.2", stream=True, decode=True):
        assert "error" not in event, event
        digest = (event.get("aux") or {}).get("Digest", digest)
    client.close()
    assert digest
    return f"{repository}@{digest}"


def test_a_bundle_on_a_usb_stick_updates_an_installation_with_no_connection(
    offline_school: School,
    district_registry: Service,
    admin_api,
    school_admin,
    settings,
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    school = offline_school
    client = runtime.docker_client()
    try:
        # The vendor publishes 1.0.2 naming the district registry, and builds
        # its bundle; then the vendor and the registry go away.
        reference = push_to(
            district_registry.env["CLMS_TEST_REGISTRY"], school.images["1.0.2"]
        )
        publish(
            ReleaseDraft(
                version="1.0.2",
                changelog="Offline bundle of 1.0.2",
                images=[
                    {"service": "app", "reference": reference},
                    {"service": "worker", "reference": reference},
                ],
                migration={"service": "app", "command": ["migrate"]},
                health_check=dict(FAST_HEALTH),
            ),
            published_by="e2e",
        )
        usb = tmp_path / "usb" / "clms-1.0.2.zip"
        call_command("build_bundle", "1.0.2", output=usb, stdout=io.StringIO())
        district_registry.stop()
        settings.UPDATES_VENDOR_URL = "http://127.0.0.1:9"  # the vendor is stopped
        settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 1
        client.images.remove(client.images.get(reference).id, force=True)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(reference)

        # The check finds nothing online and the bundle in the folder.
        check = admin_api.get("/api/updates/check").json()
        assert check["outcome"] == "offline", check
        assert "ready to apply: CLMS 1.0.2" in check["reason"], check
        bundle = OfflineBundle.objects.get(file_name="clms-1.0.2.zip")
        assert bundle.state == OfflineBundle.State.VERIFIED, bundle.reason
        release = AvailableRelease.objects.get(version="1.0.2")
        assert release.source == "offline"
        assert offline.images_available(release)
        assert offline.local_image_for(reference) is not None

        # The offline page says why and since when, and lists the bundle.
        page = Client()
        page.force_login(school_admin)
        html = page.get("/updates/offline/").content.decode()
        assert "Offline" in html and "since" in html
        assert "clms-1.0.2.zip" in html and "Verified" in html

        # The admin applies it: the same pipeline as an online update.
        answer = admin_api.post(f"/api/updates/bundles/{bundle.pk}/apply")
        assert answer.status_code == 201, answer.content
        run_id = answer.json()["run_id"]
        execute_run(run_id)
        run = UpdateRun.objects.get(pk=run_id)
        assert run.state == UpdateRun.State.SUCCEEDED, run.log
        fetch = next(s for s in run.steps if s["name"] == "fetch")
        assert "loaded from a verified offline bundle" in str(fetch), fetch
        assert AgentState.load().installed_version == "1.0.2"
        status, body = health(school.stack.health_url)
        assert (status, body["version"], body["status"]) == (200, "1.0.2", "ok")
        services = stack.service_containers(client, school.stack.project)
        assert set(services) >= {"app", "worker"}
        refreshed = OfflineBundle.objects.get(pk=bundle.pk)
        offline.scan_offline_folder()
        refreshed.refresh_from_db()
        assert refreshed.state == OfflineBundle.State.APPLIED
    finally:
        # Later tests of the session expect the demo image in the engine, under
        # the tags the cached demo build looks for (the removal dropped them).
        image = runtime.pull_by_digest(client, school.images["1.0.2"])
        image.tag(LOCAL_REPOSITORY, tag="1.0.2")
        image.tag(school.images["1.0.2"].split("@", 1)[0], tag="1.0.2")


# ---------------------------------------------------------------------------
# Source bundles: built offline on the school's server
# ---------------------------------------------------------------------------

SOURCE_IMAGE = "clms/app:1.0.3-source"


def source_bundle(
    school: School, registry: str, tmp_path: Path, dockerfile: str
) -> tuple[Path, str]:
    """The vendor publishes 1.0.3 as a source release FROM 1.0.2 and bundles it."""
    base = push_to(registry, school.images["1.0.2"])
    folder = tmp_path / "source-1.0.3"
    folder.mkdir()
    (folder / "Dockerfile").write_text(dockerfile.format(base=base))
    (folder / "NOTES").write_text("CLMS 1.0.3, built from source at the school\n")
    publish(
        ReleaseDraft(
            version="1.0.3",
            changelog="Built from source",
            compose_text=releases.compose_file(SOURCE_IMAGE),
            source={
                "image": SOURCE_IMAGE,
                "services": ["app", "worker"],
                "base_images": [base],
            },
            source_dir=folder,
        ),
        published_by="e2e",
    )
    usb = tmp_path / "usb" / "clms-1.0.3.zip"
    call_command(
        "build_bundle", "1.0.3", output=usb, source=folder, stdout=io.StringIO()
    )
    return usb, base


@pytest.fixture
def built_images() -> Iterator[None]:
    """Remove what a source build leaves in the engine (other tests remove its base)."""
    yield
    client = runtime.docker_client()
    for image in client.images.list(name="clms-offline-base"):
        for tag in image.tags:
            if tag.startswith("clms-offline-base:"):
                client.images.remove(tag)
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(SOURCE_IMAGE, force=True)
    client.images.prune(filters={"dangling": True})


def go_offline(school: School, registry: Service, settings) -> None:  # type: ignore[no-untyped-def]
    registry.stop()
    settings.UPDATES_VENDOR_URL = "http://127.0.0.1:9"  # the vendor is stopped
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 1


def apply_scanned(admin_api) -> UpdateRun:  # type: ignore[no-untyped-def]
    offline.scan_offline_folder()
    bundle = OfflineBundle.objects.get(file_name="clms-1.0.3.zip")
    assert bundle.state == OfflineBundle.State.VERIFIED, bundle.reason
    assert "source kept for an offline build" in bundle.reason
    answer = admin_api.post(f"/api/updates/bundles/{bundle.pk}/apply")
    assert answer.status_code == 201, answer.content
    execute_run(answer.json()["run_id"])
    return UpdateRun.objects.get(pk=answer.json()["run_id"])


def test_a_source_bundle_is_built_offline_and_updates_the_stack(
    built_images: None,
    offline_school: School,
    district_registry: Service,
    admin_api,
    settings,
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    school = offline_school
    _, base = source_bundle(
        school,
        district_registry.env["CLMS_TEST_REGISTRY"],
        tmp_path,
        "FROM {base}\nCOPY NOTES /app/NOTES\nRUN echo 1.0.3 > /app/VERSION\n",
    )
    go_offline(school, district_registry, settings)

    run = apply_scanned(admin_api)

    assert run.state == UpdateRun.State.SUCCEEDED, run.log
    assert "Build: Step 3/4 : RUN echo 1.0.3 > /app/VERSION" in run.log, run.log
    fetch = next(s for s in run.steps if s["name"] == "fetch")
    assert "built offline from the signed source" in str(fetch), fetch
    status, body = health(school.stack.health_url)
    assert (status, body["version"]) == (200, "1.0.3")
    release = AvailableRelease.objects.get(version="1.0.3")
    source = release.manifest().source
    assert source is not None
    client = runtime.docker_client()
    built = client.images.get(SOURCE_IMAGE)
    assert built.labels[offline.SOURCE_LABEL] == source.sha256
    containers = stack.service_containers(client, school.stack.project)
    assert {c.attrs["Image"] for cs in containers.values() for c in cs} == {built.id}
    app = containers["app"][0]
    assert app.exec_run(["cat", "/app/NOTES"]).output == (
        b"CLMS 1.0.3, built from source at the school\n"
    )
    assert AgentState.load().installed_version == "1.0.3"
    bundle = OfflineBundle.objects.get(file_name="clms-1.0.3.zip")
    assert bundle.images[base] == client.images.get(school.images["1.0.2"]).id


def test_a_source_build_that_needs_the_network_fails_naming_its_line(
    built_images: None,
    offline_school: School,
    district_registry: Service,
    admin_api,
    settings,
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    school = offline_school
    source_bundle(
        school,
        district_registry.env["CLMS_TEST_REGISTRY"],
        tmp_path,
        "FROM {base}\nRUN wget -q -O /app/extra http://downloads.example.com/x\n",
    )
    go_offline(school, district_registry, settings)
    ids = stack.container_ids(runtime.docker_client(), school.stack.project)

    run = apply_scanned(admin_api)

    assert run.state == UpdateRun.State.FAILED, run.log
    assert run.error_code == "build_failed"
    assert "Dockerfile line 2 (`RUN wget -q -O /app/extra" in run.error_message
    assert "A source build has no network" in run.error_message
    assert "Nothing was changed" in run.error_message
    assert [s["name"] for s in run.steps] == ["preflight", "fetch"]
    assert stack.container_ids(runtime.docker_client(), school.stack.project) == ids
    assert health(school.stack.health_url)[1]["version"] == "1.0.0"
    assert AgentState.load().installed_version == "1.0.0"
