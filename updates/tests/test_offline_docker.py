"""Offline bundles with a real Docker engine: load, match the signed digests, offer."""

from __future__ import annotations

import io
import json
import tarfile

import docker
import pytest
from django.core.cache import cache

from updates import checking, offline
from updates.models import AvailableRelease, OfflineBundle, UpdateCheck, UpdateRun
from updates.pipeline.preparing import local_image
from updates.runtime import forget_client
from updates.tests.bundles import (  # noqa: F401  (fixture)
    BundleSpec,
    ImagePayload,
    agent_fixture,
    manifest_for,
    real_image,
    write_bundle,
)

pytestmark = [pytest.mark.django_db, pytest.mark.services, pytest.mark.docker]


@pytest.fixture
def engine(docker_host, settings):  # type: ignore[no-untyped-def]
    settings.DOCKER_HOST = docker_host
    forget_client(docker_host)
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


def bundle_of(agent, vendor_key, images: list[ImagePayload], version: str = "1.0.2"):  # type: ignore[no-untyped-def]
    spec = BundleSpec(
        manifest=manifest_for(images, version),
        images=images,
        key_home=vendor_key[0],
        fingerprint=vendor_key[1],
    )
    return write_bundle(spec, agent / "offline" / f"clms-{version}.zip")


def test_a_good_bundle_is_loaded_matched_and_offered_as_an_offline_release(
    agent, vendor_key, engine
):
    image = real_image(engine, text="good")
    bundle_of(agent, vendor_key, [image])

    [bundle] = offline.scan_offline_folder()

    assert bundle.state == OfflineBundle.State.VERIFIED, bundle.reason
    release = AvailableRelease.objects.get(version="1.0.2")
    assert release.source == "offline"
    assert offline.images_available(release)
    local = offline.local_image_for(image.reference)
    assert local is not None
    loaded = engine.images.get(local)
    assert f"{image.repository}:offline-1.0.2" in loaded.tags
    # The bundle stays in the folder (a mirror may serve it); the work folder is empty.
    assert (agent / "offline" / "clms-1.0.2.zip").exists()
    assert not any((agent / "work").iterdir())


def test_an_image_archive_that_is_not_the_signed_image_is_refused(
    agent, vendor_key, engine
):
    signed = real_image(engine, text="signed")
    other = real_image(engine, text="swapped")
    swapped = ImagePayload(
        signed.service, signed.repository, signed.registry_manifest, other.archive
    )
    bundle_of(agent, vendor_key, [swapped])

    [bundle] = offline.scan_offline_folder()

    assert bundle.state == OfflineBundle.State.REFUSED
    assert "[archive_contents]" in bundle.reason  # seen before it was loaded
    assert "not the signed one" in bundle.reason
    assert not AvailableRelease.objects.exists()
    assert offline.local_image_for(signed.reference) is None
    assert list((agent / "quarantine").glob("*.reason.txt"))


def test_a_check_with_the_vendor_unreachable_scans_the_offline_folder(
    agent, vendor_key, engine, settings
):
    cache.clear()
    settings.UPDATES_SOURCES = ["vendor", "offline"]
    settings.UPDATES_VENDOR_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 1
    image = real_image(engine, text="via check")
    bundle_of(agent, vendor_key, [image])

    check = checking.run_check(trigger=UpdateCheck.Trigger.MANUAL)

    assert check.outcome == UpdateCheck.Outcome.OFFLINE
    assert "ready to apply: CLMS 1.0.2" in check.reason
    release = AvailableRelease.objects.get(version="1.0.2")
    assert offline.images_available(release)


def test_applying_a_verified_bundle_schedules_the_same_pipeline_now(
    agent, vendor_key, engine, admin_api
):
    image = real_image(engine, text="apply")
    bundle_of(agent, vendor_key, [image])
    [bundle] = offline.scan_offline_folder()

    answer = admin_api.post(f"/api/updates/bundles/{bundle.pk}/apply")

    assert answer.status_code == 201, answer.content
    run = UpdateRun.objects.get(pk=answer.json()["run_id"])
    assert run.to_version == "1.0.2"
    assert run.release is not None and run.release.source == "offline"
    assert run.state == UpdateRun.State.SCHEDULED


def test_the_pipeline_runs_a_loaded_image_by_id_only_while_a_verified_bundle_vouches(
    agent, vendor_key, engine
):
    image = real_image(engine, text="pipeline")
    bundle_of(agent, vendor_key, [image])
    [bundle] = offline.scan_offline_folder()
    loaded = offline.local_image_for(image.reference)
    assert loaded is not None
    # docker load keeps no RepoDigests: the engine alone cannot vouch for it.
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(image.reference)

    assert local_image(engine, image.reference) == loaded

    OfflineBundle.objects.filter(pk=bundle.pk).update(state=OfflineBundle.State.REFUSED)
    assert local_image(engine, image.reference) is None


def _with_extra_image(signed: bytes, extra: bytes, tags: list[str]) -> bytes:
    """A ``docker save`` archive holding ``signed`` and also ``extra`` named ``tags``."""
    out = io.BytesIO()
    listed: list[dict] = []  # type: ignore[type-arg]
    with tarfile.open(fileobj=out, mode="w") as merged:
        for data, names in ((signed, None), (extra, tags)):
            with tarfile.open(fileobj=io.BytesIO(data)) as part:
                for member in part:
                    body = part.extractfile(member) if member.isfile() else None
                    if member.name == "manifest.json":
                        assert body is not None
                        entries = json.loads(body.read())
                        for entry in entries:
                            entry["RepoTags"] = names
                        listed += entries
                        continue
                    merged.addfile(member, body)
        document = json.dumps(listed).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(document)
        merged.addfile(info, io.BytesIO(document))
    return out.getvalue()


@pytest.mark.parametrize("extra_tags", [["127.0.0.1:5000/clms/db:15"], None])
def test_a_signed_archive_carrying_another_image_never_reaches_the_engine(
    agent, vendor_key, engine, extra_tags
):
    # The school's database image, already on the engine under its tag.
    victim = real_image(engine, text="the real database")
    engine.images.load(victim.archive)
    original_id = json.loads(victim.registry_manifest)["config"]["digest"]
    engine.images.get(original_id).tag("127.0.0.1:5000/clms/db", tag="15")
    signed = real_image(engine, text="signed")
    hostile = real_image(engine, text="hostile database")
    archive = _with_extra_image(signed.archive, hostile.archive, extra_tags)
    payload = ImagePayload(
        signed.service, signed.repository, signed.registry_manifest, archive
    )
    bundle_of(agent, vendor_key, [payload])  # validly signed, archive included

    [bundle] = offline.scan_offline_folder()

    assert bundle.state == OfflineBundle.State.REFUSED
    assert "[archive_contents]" in bundle.reason
    assert "lists 2 images" in bundle.reason
    assert engine.images.get("127.0.0.1:5000/clms/db:15").id == original_id
    hostile_id = json.loads(hostile.registry_manifest)["config"]["digest"]
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(hostile_id)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(json.loads(signed.registry_manifest)["config"]["digest"])


def test_a_signed_archive_that_names_its_image_is_refused(agent, vendor_key, engine):
    signed = real_image(engine, text="signed")
    with tarfile.open(fileobj=io.BytesIO(signed.archive)) as part:
        members = [
            (m, part.extractfile(m).read() if m.isfile() else None) for m in part
        ]  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as named:
        for member, body in members:
            if member.name == "manifest.json" and body is not None:
                entries = json.loads(body)
                entries[0]["RepoTags"] = ["127.0.0.1:5000/clms/named-by-archive:1"]
                body = json.dumps(entries).encode()
                member.size = len(body)
            named.addfile(member, io.BytesIO(body) if body is not None else None)
    payload = ImagePayload(
        signed.service, signed.repository, signed.registry_manifest, out.getvalue()
    )
    bundle_of(agent, vendor_key, [payload])

    [bundle] = offline.scan_offline_folder()

    assert bundle.state == OfflineBundle.State.REFUSED
    assert "would tag images as 127.0.0.1:5000/clms/named-by-archive:1" in bundle.reason
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get("127.0.0.1:5000/clms/named-by-archive:1")
