"""Test data for the vendor server: schools, releases (really signed), images."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

import requests

from vendor_server.models import School
from vendor_server.publishing import ReleaseDraft, publish
from vendor_server.schools import create_school

_names = itertools.count(1)


def make_school(channel: str = "stable", **extra: Any) -> tuple[School, str]:
    """A school and its plain API key."""
    return create_school(f"School {next(_names)}", channel=channel, **extra)


def push_image(registry: str, repository: str = "clms/web", auth: Any = None) -> str:
    """Push a tiny OCI image (config blob only) over the Registry API; return its reference."""
    base = f"http://{registry}/v2/{repository}"
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    start = requests.post(f"{base}/blobs/uploads/", auth=auth, timeout=10)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    requests.put(
        f"{location}{sep}digest={config_digest}",
        data=config,
        headers={"Content-Type": "application/octet-stream"},
        auth=auth,
        timeout=10,
    ).raise_for_status()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    requests.put(
        f"{base}/manifests/latest",
        data=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        auth=auth,
        timeout=10,
    ).raise_for_status()
    return f"{registry}/{repository}@sha256:{hashlib.sha256(manifest).hexdigest()}"


def draft(version: str, image: str, **extra: Any) -> ReleaseDraft:
    """A valid draft naming ``image`` as the web service."""
    extra.setdefault("images", [{"service": "web", "reference": image}])
    return ReleaseDraft(version=version, **extra)


def make_release(version: str, image: str, **extra: Any):  # type: ignore[no-untyped-def]
    """Publish a release for real (validated, signed)."""
    return publish(draft(version, image, **extra), published_by="tests")
