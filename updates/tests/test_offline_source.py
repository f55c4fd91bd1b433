"""Source bundles refused when scanned: each with its reason, nothing loaded or kept.

The end-to-end build (vendor publishes and bundles a real source release, the
agent builds it offline and updates the demo stack) is in
``tests/test_e2e_offline.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clms_updates import manifest as m
from clms_updates.manifest.dockerfile import offline_problems, parse, rewrite
from updates import offline
from updates.models import OfflineBundle
from updates.tests.bundles import (  # noqa: F401  (fixture)
    BundleSpec,
    agent_fixture,
    fake_image,
    source_digest,
    write_bundle,
)
from updates.tests.factories import make_manifest

pytestmark = [pytest.mark.django_db, pytest.mark.services, pytest.mark.docker]

IMAGE = "clms/app:1.0.3-source"


def source_manifest(
    files: dict[str, bytes], bases: list[m.BaseImage], **overrides: object
) -> m.ReleaseManifest:
    compose = {
        "services": {
            "app": {"image": IMAGE, "command": ["serve"]},
            "worker": {"image": IMAGE, "command": ["worker"]},
        }
    }
    values: dict[str, object] = {
        "images": (),
        "compose": compose,
        "source": m.SourceBuild(
            sha256=source_digest(files),
            image=IMAGE,
            services=("app", "worker"),
            base_images=tuple(bases),
        ),
    }
    values.update(overrides)
    return make_manifest("1.0.3", **values)  # type: ignore[arg-type]


def scan_one(agent: Path, spec: BundleSpec) -> OfflineBundle:
    write_bundle(spec, agent / "offline" / "clms-1.0.3.zip")
    rows = offline.scan_offline_folder()
    assert len(rows) == 1
    return rows[0]


def refused(bundle: OfflineBundle, code: str, words: str) -> None:
    assert bundle.state == OfflineBundle.State.REFUSED, bundle.reason
    assert f"[{code}]" in bundle.reason
    assert words in bundle.reason
    assert bundle.source_dir == ""


def test_a_dockerfile_building_from_an_image_the_bundle_lacks_is_refused_by_line(
    agent, vendor_key
) -> None:  # type: ignore[no-untyped-def]
    base = fake_image("base", "127.0.0.1:5000/clms/base")
    files = {
        "Dockerfile": b"# the app\nFROM "
        + base.reference.encode()
        + b" AS build\nRUN true\nFROM alpine:3.19\nCOPY --from=build /app /app\n"
    }
    bases = [m.BaseImage(base.reference, "sha256:" + "ab" * 32)]
    spec = BundleSpec(
        manifest=source_manifest(files, bases),
        images=[],
        key_home=vendor_key[0],
        fingerprint=vendor_key[1],
        source=files,
        base_images=[base],
    )

    bundle = scan_one(agent, spec)

    refused(bundle, "dockerfile", "Dockerfile line 4 (`FROM alpine:3.19`)")
    assert "not one of the base images the release ships" in bundle.reason
    assert not (agent / "work" / "sources").exists()


def test_a_base_image_named_by_the_manifest_but_missing_from_the_bundle_is_refused(
    agent, vendor_key
) -> None:  # type: ignore[no-untyped-def]
    base = fake_image("base", "127.0.0.1:5000/clms/base")
    files = {"Dockerfile": f"FROM {base.reference}\n".encode()}
    bases = [m.BaseImage(base.reference, "sha256:" + "ab" * 32)]
    spec = BundleSpec(
        manifest=source_manifest(files, bases),
        images=[],
        key_home=vendor_key[0],
        fingerprint=vendor_key[1],
        source=files,
        base_images=[],
    )

    refused(
        scan_one(agent, spec), "incomplete", f"lacks the base image(s) {base.reference}"
    )


def test_source_changed_after_signing_is_refused_before_anything_is_extracted(
    agent, vendor_key
) -> None:  # type: ignore[no-untyped-def]
    base = fake_image("base", "127.0.0.1:5000/clms/base")
    signed = {"Dockerfile": f"FROM {base.reference}\nRUN true\n".encode()}
    shipped = {**signed, "Dockerfile": f"FROM {base.reference}\nRUN evil\n".encode()}
    spec = BundleSpec(
        manifest=source_manifest(
            signed, [m.BaseImage(base.reference, "sha256:" + "ab" * 32)]
        ),
        images=[],
        key_home=vendor_key[0],
        fingerprint=vendor_key[1],
        source=shipped,  # listed in bundle.json with its own sha256, so it "matches"
        base_images=[base],
    )

    bundle = scan_one(agent, spec)

    refused(bundle, "tampered", "is not the source tree the release signed")
    assert not list((agent / "work").rglob("Dockerfile"))


def test_an_image_release_carrying_source_is_refused(agent, vendor_key) -> None:  # type: ignore[no-untyped-def]
    image = fake_image()
    spec = BundleSpec(
        manifest=make_manifest("1.0.3", images=(m.Image("app", image.reference),)),
        images=[image],
        key_home=vendor_key[0],
        fingerprint=vendor_key[1],
        source={"Dockerfile": b"FROM scratch\n"},
    )

    refused(scan_one(agent, spec), "mismatch", "is not a source release")


# ---------------------------------------------------------------------------
# Reading Dockerfiles (both roles)
# ---------------------------------------------------------------------------

BASE = "127.0.0.1:5000/clms/base@sha256:" + "cd" * 32


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("FROM alpine\n", "line 1 (`FROM alpine`): alpine is not one of"),
        ("ARG V=1\nFROM base:$V\n", "line 2 (`FROM base:$V`): the base image is given"),
        (
            f"FROM {BASE}\nADD https://example.com/x.tgz /x\n",
            "line 2 (`ADD https://example.com/x.tgz /x`): ADD downloads",
        ),
        (f"FROM {BASE}\nCOPY --from=nginx:1 /a /a\n", "--from=nginx:1 is neither"),
        ("RUN true\n", "comes before the first FROM"),
        ("# nothing\n", "has no FROM line"),
        (f"FROM {BASE}\nRUN echo a \\\n", "continues past the end of the file"),
    ],
    ids=[
        "unshipped",
        "variable",
        "add-url",
        "copy-from",
        "before-from",
        "no-from",
        "cut",
    ],
)
def test_a_dockerfile_that_cannot_build_offline_says_which_line(
    text: str, problem: str
) -> None:
    problems = offline_problems(text, [BASE], name="Dockerfile")
    assert any(problem in p for p in problems), problems


def test_stages_scratch_and_shipped_images_build_offline_and_lines_are_kept() -> None:
    text = (
        "# syntax is the default\n"
        f"FROM --platform=linux/amd64 {BASE} AS build\n"
        "RUN make \\\n"
        "    all\n"
        "FROM scratch\n"
        "COPY --from=build /out /out\n"
        f"COPY --from={BASE} /etc/passwd /etc/passwd\n"
    )
    assert offline_problems(text, [BASE], name="Dockerfile") == []
    assert [(i.line, i.keyword) for i in parse(text)] == [
        (2, "FROM"),
        (3, "RUN"),
        (5, "FROM"),
        (6, "COPY"),
        (7, "COPY"),
    ]
    rewritten = rewrite(text, {BASE: "clms-offline-base:cdcd"})
    lines = rewritten.splitlines()
    assert lines[1] == "FROM --platform=linux/amd64 clms-offline-base:cdcd AS build"
    assert lines[6] == "COPY --from=clms-offline-base:cdcd /etc/passwd /etc/passwd"
    assert lines[2:6] == text.splitlines()[2:6]
    assert len(lines) == len(text.splitlines())
