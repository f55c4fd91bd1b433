"""The agent's Docker runtime against a real engine, registry and the demo CLMS stack."""

from __future__ import annotations

import io
import os
import tarfile
import uuid

import docker
import pytest

from clms_updates import manifest as m
from devtools.demo_stack.stack import project_containers, service_container
from tests.demo_fixtures import *  # noqa: F403  (the demo stack fixtures)
from updates import runtime
from updates.runtime import (
    DockerUnavailable,
    ImageMismatch,
    ImageNotAvailable,
    ImageReferenceRefused,
)

SOME_DIGEST = "sha256:" + "ab" * 32


# ---------------------------------------------------------------------------
# Without an engine
# ---------------------------------------------------------------------------


def test_an_unreachable_engine_is_reported_with_its_docker_host(settings, tmp_path):
    settings.DOCKER_HOST = f"unix://{tmp_path}/no-such-docker.sock"
    with pytest.raises(DockerUnavailable) as caught:
        runtime.docker_client()
    assert f"DOCKER_HOST=unix://{tmp_path}/no-such-docker.sock" in str(caught.value)
    assert "dockerd is running" in str(caught.value)


@pytest.mark.parametrize(
    "reference",
    [
        "127.0.0.1:5000/clms/app:1.0.1",
        "127.0.0.1:5000/clms/app",
        "clms/app:latest",
        f"127.0.0.1:5000/clms/app:1.0.1@{SOME_DIGEST}",
        "127.0.0.1:5000/clms/app@sha256:abc",
        f"@{SOME_DIGEST}",
    ],
)
def test_references_without_a_plain_digest_are_refused(reference):
    with pytest.raises(ImageReferenceRefused):
        runtime.parse_digest_reference(reference)


def test_a_digest_reference_keeps_the_registry_port():
    ref = runtime.parse_digest_reference(f"127.0.0.1:5000/clms/app@{SOME_DIGEST}")
    assert (ref.repository, ref.digest) == ("127.0.0.1:5000/clms/app", SOME_DIGEST)


# ---------------------------------------------------------------------------
# Against the real engine and registry
# ---------------------------------------------------------------------------


@pytest.fixture
def engine(demo_docker):
    """The runtime's own client on the test engine."""
    runtime.forget_client(os.environ["DOCKER_HOST"])
    client = runtime.docker_client(os.environ["DOCKER_HOST"])
    yield client
    runtime.forget_client(os.environ["DOCKER_HOST"])


def _push_random_image(client: docker.DockerClient, registry: str, size: int) -> str:
    """A fresh image with one layer of ``size`` random bytes, pushed then removed locally."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        dockerfile = b"FROM scratch\nCOPY blob /blob\n"
        for name, data in (("Dockerfile", dockerfile), ("blob", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    repository = f"{registry}/test/blob-{uuid.uuid4().hex[:8]}"
    image, _ = client.images.build(
        fileobj=buffer, custom_context=True, tag=f"{repository}:1"
    )
    digest = ""
    for event in client.api.push(repository, tag="1", stream=True, decode=True):
        digest = (event.get("aux") or {}).get("Digest", digest)
    client.images.remove(image.id, force=True)
    return f"{repository}@{digest}"


@pytest.mark.services
@pytest.mark.docker
def test_a_pull_by_digest_reports_bytes_and_yields_that_digest(engine):
    reference = _push_random_image(engine, os.environ["CLMS_TEST_REGISTRY"], 3_000_000)
    calls: list[tuple[int, int]] = []
    image = runtime.pull_by_digest(
        engine, reference, progress=lambda done, total: calls.append((done, total))
    )
    assert reference in image.attrs["RepoDigests"]
    done, total = calls[-1]
    assert (
        done == total >= 1_000_000
    )  # compressed on the wire, random data barely shrinks
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.services
@pytest.mark.docker
def test_a_tag_is_refused_before_anything_is_pulled(engine, demo_images):
    tagged = demo_images["1.0.1"].split("@")[0] + ":1.0.1"
    with pytest.raises(ImageReferenceRefused, match="names no digest"):
        runtime.pull_by_digest(engine, tagged)


@pytest.mark.services
@pytest.mark.docker
def test_a_digest_the_registry_lacks_is_not_available(engine, demo_images):
    repository = demo_images["1.0.1"].split("@")[0]
    with pytest.raises(ImageNotAvailable, match="nothing was changed"):
        runtime.pull_by_digest(engine, f"{repository}@{SOME_DIGEST}")


@pytest.mark.services
@pytest.mark.docker
def test_an_image_carrying_another_digest_is_a_mismatch(engine, demo_images):
    image = runtime.pull_by_digest(engine, demo_images["1.0.0"])
    with pytest.raises(ImageMismatch, match="does not match the signed release"):
        runtime.verify_image_digest(image, demo_images["1.0.1"])


@pytest.mark.services
@pytest.mark.docker
def test_a_one_off_migration_reports_its_failure_and_leaves_nothing_behind(
    engine, demo_stack, demo_images
):
    before = sorted(c.name for c in project_containers(engine, demo_stack.project))
    snapshot = runtime.snapshot_container(
        engine, service_container(engine, demo_stack.project, "app")
    )
    image = runtime.pull_by_digest(engine, demo_images["1.1.0-badmigration"])

    result = runtime.run_one_off(
        engine, snapshot, image.id, ["migrate"], purpose="migrate"
    )

    assert (result.exit_code, result.succeeded) == (1, False)
    assert "legacy_inventory" in result.log_tail
    after = sorted(c.name for c in project_containers(engine, demo_stack.project))
    assert after == before


@pytest.mark.services
@pytest.mark.docker
def test_a_snapshot_survives_a_round_trip_through_json(engine, demo_stack):
    import json

    app = service_container(engine, demo_stack.project, "app")
    snapshot = runtime.snapshot_container(engine, app)
    copy = runtime.ContainerSnapshot.from_dict(
        json.loads(json.dumps(snapshot.as_dict()))
    )
    assert copy == snapshot
    assert copy.network_mode == "host"
    assert (
        "CLMS_HTTP_PORT=8080" not in copy.config["Env"]
    )  # the image's default, left to the image
    assert f"CLMS_HTTP_PORT={demo_stack.http_port}" in copy.config["Env"]


@pytest.mark.services
@pytest.mark.docker
def test_a_one_off_that_outlives_its_timeout_is_killed_and_reported(
    engine, demo_stack, demo_images
):
    app = service_container(engine, demo_stack.project, "app")
    snapshot = runtime.snapshot_container(engine, app)

    result = runtime.run_one_off(
        engine, snapshot, demo_images["1.0.0"], ["sleep", "30"], timeout=1
    )

    assert (result.timed_out, result.exit_code, result.succeeded) == (True, -1, False)
    assert result.seconds < 10
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(f"{snapshot.name}-oneoff")


@pytest.mark.services
@pytest.mark.docker
def test_a_one_off_still_running_after_a_crash_is_waited_for_not_repeated(
    engine, demo_stack, demo_images
):
    app = service_container(engine, demo_stack.project, "app")
    snapshot = runtime.snapshot_container(engine, app)
    # What a worker killed mid-migration leaves behind: the one-off still running.
    engine.containers.run(
        demo_images["1.0.0"],
        ["sh", "-c", "sleep 1; echo first run; exit 7"],
        name=f"{snapshot.name}-migrate",
        network_mode="host",
        detach=True,
    )

    result = runtime.run_one_off(
        engine, snapshot, demo_images["1.0.0"], ["migrate"], purpose="migrate"
    )

    assert result.exit_code == 7
    assert "first run" in result.log_tail


@pytest.mark.services
@pytest.mark.docker
def test_old_release_images_go_unless_kept_or_used_by_a_container(engine):
    """Images pulled by digest only, as a school has them: the old one is
    deleted (its bytes freed), one a container uses and one kept stay."""
    from updates.runtime import cleanup

    registry = os.environ["CLMS_TEST_REGISTRY"]
    old, used, kept = (_push_random_image(engine, registry, 400_000) for _ in range(3))
    for reference in (old, used, kept):
        runtime.pull_by_digest(engine, reference)
    container = engine.containers.create(used, command=["/blob"])
    try:
        cleaned = cleanup.remove_unused(engine, [old, used, kept], keep=[kept])
        assert cleaned.removed == [old]
        assert cleaned.in_use == [used]
        assert cleaned.freed_bytes >= 400_000
        assert "removed 1 image(s)" in cleaned.summary()
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(old)
        engine.images.get(used)
        engine.images.get(kept)
    finally:
        container.remove(force=True)
        for reference in (used, kept):
            engine.images.remove(reference, force=True)


@pytest.mark.services
@pytest.mark.docker
@pytest.mark.django_db
def test_the_disk_figures_count_each_image_of_a_verified_release_once(
    engine, settings
) -> None:
    from django.core.cache import cache

    from updates import disk
    from updates.tests.factories import make_manifest, make_release

    settings.DOCKER_HOST = os.environ["DOCKER_HOST"]
    reference = _push_random_image(engine, os.environ["CLMS_TEST_REGISTRY"], 2_000_000)
    runtime.pull_by_digest(engine, reference)
    image = m.Image("app", reference)
    for version in ("1.0.1", "1.0.2"):  # two releases naming the same image
        manifest = make_manifest(version, images=(image,))
        make_release(version, manifest_text=manifest.to_bytes().decode())
    cache.delete(disk.CACHE_KEY)
    use = disk.disk_use()
    assert use.image_count == 1
    assert use.images_bytes is not None and use.images_bytes >= 2_000_000
    assert use.free_bytes and use.free_bytes > 0


@pytest.mark.services
@pytest.mark.docker
def test_the_free_space_check_counts_what_the_update_pulls(engine, settings) -> None:
    import shutil

    from updates.pipeline.errors import StepFailed
    from updates.pipeline.preparing import _check_disk

    root = engine.info()["DockerRootDir"]
    free_mb = shutil.disk_usage(root).free // (1024 * 1024)
    settings.BACKUP_DIR = root  # the same disk: only the pull makes the difference
    # Room to spare for other writers on this disk meanwhile: 2 GB.
    settings.UPDATES_MIN_FREE_DISK_MB = max(1, free_mb - 2000)
    _check_disk(engine, pull_mb=0)  # enough room without a pull
    with pytest.raises(StepFailed) as refused:
        _check_disk(engine, pull_mb=free_mb + 1000)
    assert refused.value.code == "low_disk"
    assert f"plus about {free_mb + 1000} MB for the images this update pulls" in (
        refused.value.message
    )
