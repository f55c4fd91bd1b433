"""The agent's Docker runtime against a real engine, registry and the demo CLMS stack."""

from __future__ import annotations

import io
import os
import re
import tarfile
import time
import uuid
from pathlib import Path

import docker
import pytest

from devtools.demo_stack import wait_healthy
from tests.demo_fixtures import *  # noqa: F403  (the demo stack fixtures)
from updates import runtime
from updates.runtime import (
    DockerUnavailable,
    EnvFileError,
    ImageMismatch,
    ImageNotAvailable,
    ImageReferenceRefused,
    NoPreviousContainer,
    ServicesNotFound,
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


def test_the_env_file_gets_new_images_and_keeps_every_other_line(tmp_path):
    env_file = tmp_path / "clms.env"
    env_file.write_text(
        "# CLMS stack\nCLMS_APP_IMAGE=old@sha256:1\n\nexport CLMS_WORKER_IMAGE=old@sha256:2\n"
        "CLMS_DATABASE_URL=postgresql://db/clms\n"
    )
    env_file.chmod(0o640)
    runtime.update_env_file(
        env_file,
        {
            "CLMS_APP_IMAGE": "new@sha256:3",
            "CLMS_WORKER_IMAGE": "new@sha256:4",
            "CLMS_EXTRA_IMAGE": "x@sha256:5",
        },
    )
    assert env_file.read_text() == (
        "# CLMS stack\nCLMS_APP_IMAGE=new@sha256:3\n\nexport CLMS_WORKER_IMAGE=new@sha256:4\n"
        "CLMS_DATABASE_URL=postgresql://db/clms\nCLMS_EXTRA_IMAGE=x@sha256:5\n"
    )
    assert env_file.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["clms.env"]


def test_a_missing_env_file_or_a_bad_value_is_refused_without_writing(tmp_path):
    with pytest.raises(EnvFileError, match="does not exist"):
        runtime.update_env_file(tmp_path / "absent.env", {"CLMS_APP_IMAGE": "x"})
    env_file = tmp_path / "clms.env"
    env_file.write_text("CLMS_APP_IMAGE=a\n")
    with pytest.raises(EnvFileError):
        runtime.update_env_file(env_file, {"CLMS_APP_IMAGE": "a\nEVIL=1"})
    assert env_file.read_text() == "CLMS_APP_IMAGE=a\n"


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
def test_the_services_of_a_project_are_found_by_compose_label(engine, demo_stack):
    services = runtime.find_services(engine, demo_stack.project)
    assert {name: [c.name for c in found] for name, found in services.items()} == {
        "app": [f"{demo_stack.project}-app-1"],
        "worker": [f"{demo_stack.project}-worker-1"],
    }
    with pytest.raises(
        ServicesNotFound, match=re.escape("com.docker.compose.project=no-such-project")
    ):
        runtime.find_services(engine, "no-such-project")


def _essentials(container) -> dict[str, object]:
    container.reload()
    attrs = container.attrs
    return {
        "env": sorted(attrs["Config"]["Env"]),
        "cmd": attrs["Config"]["Cmd"],
        "labels": {
            k: v
            for k, v in attrs["Config"]["Labels"].items()
            if k.startswith("com.docker.compose")
        },
        "mounts": [(m["Source"], m["Destination"], m["RW"]) for m in attrs["Mounts"]],
        "restart": attrs["HostConfig"]["RestartPolicy"],
        "network": attrs["HostConfig"]["NetworkMode"],
        "networks": sorted(attrs["NetworkSettings"]["Networks"]),
        "init": attrs["HostConfig"]["Init"],
        "healthcheck": attrs["Config"].get("Healthcheck"),
    }


def _update_stack(engine, stack, reference: str) -> None:
    """What the pipeline's apply and migrate steps do, in their order."""
    runtime.pull_by_digest(engine, reference)
    app = runtime.find_services(engine, stack.project)["app"][0]
    snapshot = runtime.snapshot_container(engine, app)
    started = time.monotonic()
    for containers in runtime.find_services(engine, stack.project).values():
        runtime.recreate_container(
            engine, containers[0].name, reference, stop_timeout=5
        )
    print(f"\n[runtime] recreated both services in {time.monotonic() - started:.2f}s")
    result = runtime.run_one_off(
        engine, snapshot, reference, ["migrate"], purpose="migrate", timeout=60
    )
    assert result.succeeded, result.log_tail


@pytest.mark.services
@pytest.mark.docker
def test_recreating_a_service_changes_only_its_image(engine, demo_stack, demo_images):
    name = f"{demo_stack.project}-app-1"
    before = _essentials(engine.containers.get(name))
    old_id = engine.containers.get(name).id

    _update_stack(engine, demo_stack, demo_images["1.0.1"])

    new = engine.containers.get(name)
    assert new.id != old_id
    assert new.attrs["Config"]["Image"] == demo_images["1.0.1"]
    assert new.labels["org.opencontainers.image.version"] == "1.0.1"
    assert _essentials(new) == before
    previous = engine.containers.get(f"{name}-previous")
    assert (previous.id, previous.status) == (old_id, "exited")
    assert previous.attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"
    body = wait_healthy(demo_stack.health_url, timeout=20, version="1.0.1")
    assert body["schema"] == "0002_book_isbn"


@pytest.mark.services
@pytest.mark.docker
def test_restore_brings_the_previous_container_back(engine, demo_stack, demo_images):
    name = f"{demo_stack.project}-app-1"
    old = engine.containers.get(name)
    before = _essentials(old)
    runtime.recreate_container(
        engine, name, demo_images["1.1.0-unhealthy"], stop_timeout=5
    )

    restored = runtime.restore_previous(engine, name, stop_timeout=5)

    assert restored.id == old.id
    assert restored.name == name
    assert _essentials(restored) == before
    assert runtime.previous_container(engine, name) is None
    wait_healthy(demo_stack.health_url, timeout=20, version="1.0.0")
    with pytest.raises(NoPreviousContainer):
        runtime.restore_previous(engine, name)


@pytest.mark.services
@pytest.mark.docker
def test_recreate_finishes_what_an_interrupted_call_left(
    engine, demo_stack, demo_images
):
    name = f"{demo_stack.project}-worker-1"
    target = demo_images["1.0.1"]
    runtime.pull_by_digest(engine, target)
    old = engine.containers.get(name)
    before = _essentials(old)
    # A worker crashed right after stopping and renaming the old container.
    old.stop(timeout=5)
    old.update(restart_policy={"Name": "no"})
    old.rename(f"{name}-previous")

    new, _ = runtime.recreate_container(engine, name, target)
    again, _ = runtime.recreate_container(engine, name, target)

    assert again.id == new.id
    assert new.status == "running"
    assert _essentials(new) == before
    assert runtime.remove_previous(engine, name) is True
    assert runtime.remove_previous(engine, name) is False


@pytest.mark.services
@pytest.mark.docker
def test_a_one_off_migration_reports_its_failure_and_leaves_nothing_behind(
    engine, demo_stack, demo_images
):
    app = engine.containers.get(f"{demo_stack.project}-app-1")
    snapshot = runtime.snapshot_container(engine, app)
    image = runtime.pull_by_digest(engine, demo_images["1.1.0-badmigration"])

    result = runtime.run_one_off(
        engine, snapshot, image.id, ["migrate"], purpose="migrate"
    )

    assert (result.exit_code, result.succeeded) == (1, False)
    assert "legacy_inventory" in result.log_tail
    names = [
        c.name
        for c in engine.containers.list(
            all=True,
            filters={"label": f"com.docker.compose.project={demo_stack.project}"},
        )
    ]
    assert sorted(names) == sorted(
        [f"{demo_stack.project}-app-1", f"{demo_stack.project}-worker-1"]
    )


@pytest.mark.services
@pytest.mark.docker
def test_a_snapshot_survives_a_round_trip_through_json(engine, demo_stack):
    import json

    app = engine.containers.get(f"{demo_stack.project}-app-1")
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


def test_the_env_file_written_for_compose_is_updated_in_place(tmp_path: Path):
    from devtools.demo_stack import write_env_file

    env_file = tmp_path / "clms.env"
    write_env_file(
        env_file,
        image_ref="r@sha256:1",
        database_url="postgresql://x/y",
        http_port=8080,
        state_dir=tmp_path,
    )
    runtime.update_env_file(env_file, {"CLMS_APP_IMAGE": "r@sha256:2"})
    values = runtime.read_env_file(env_file)
    assert values["CLMS_APP_IMAGE"] == "r@sha256:2"
    assert values["CLMS_DATABASE_URL"] == "postgresql://x/y"


@pytest.mark.services
@pytest.mark.docker
def test_recreate_keeps_networks_aliases_and_volume_data(engine, demo_images):
    project = f"clms-net-{uuid.uuid4().hex[:6]}"
    front = engine.networks.create(f"{project}-front")
    back = engine.networks.create(f"{project}-back")
    name = f"{project}-worker-1"
    try:
        container = engine.containers.create(
            demo_images["1.0.0"],
            ["worker"],
            name=name,
            labels={
                "com.docker.compose.project": project,
                "com.docker.compose.service": "worker",
            },
            network=front.name,
            # a named volume, and an anonymous one whose data must carry over too
            volumes=[f"{project}-data:/data", "/cache"],
            environment={"CLMS_DATABASE_URL": "postgresql://unused/db"},
            init=True,
        )
        back.connect(container, aliases=["library-worker"])
        container.start()
        container.exec_run(["sh", "-c", "echo named > /data/m; echo anon > /cache/m"])
        runtime.pull_by_digest(engine, demo_images["1.0.1"])

        new, _ = runtime.recreate_container(
            engine, name, demo_images["1.0.1"], stop_timeout=5
        )

        networks = new.attrs["NetworkSettings"]["Networks"]
        assert sorted(networks) == sorted([front.name, back.name])
        assert "library-worker" in networks[back.name]["Aliases"]
        assert new.exec_run(["cat", "/data/m", "/cache/m"]).output.split() == [
            b"named",
            b"anon",
        ]
    finally:
        leftovers = engine.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
        for leftover in leftovers:
            leftover.remove(force=True, v=True)
        front.remove()
        back.remove()


@pytest.mark.services
@pytest.mark.docker
def test_a_new_container_that_cannot_start_leaves_the_old_one_running(
    engine, demo_stack, demo_images
):
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        dockerfile = (f"FROM {demo_images['1.0.1']}\nUSER nobody-here\n").encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        archive.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    runtime.pull_by_digest(engine, demo_images["1.0.1"])
    broken, _ = engine.images.build(
        fileobj=context, custom_context=True, tag="clms-test/broken:1"
    )
    name = f"{demo_stack.project}-app-1"
    old_id = engine.containers.get(name).id

    with pytest.raises(runtime.RecreateFailed, match="previous container is running"):
        runtime.recreate_container(engine, name, broken.id, stop_timeout=5)

    back = engine.containers.get(name)
    assert (back.id, back.status) == (old_id, "running")
    assert back.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert runtime.previous_container(engine, name) is None
    wait_healthy(demo_stack.health_url, timeout=20, version="1.0.0")


@pytest.mark.services
@pytest.mark.docker
def test_a_one_off_that_outlives_its_timeout_is_killed_and_reported(
    engine, demo_stack, demo_images
):
    app = engine.containers.get(f"{demo_stack.project}-app-1")
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
    app = engine.containers.get(f"{demo_stack.project}-app-1")
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
