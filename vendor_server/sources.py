"""Source releases on the vendor side: what the manifest signs about the source.

A source release says, in its manifest file's ``source`` part, which local
image the school builds (``image``), which services run it (``services``),
the Dockerfile (``dockerfile``, default ``Dockerfile``) and every image it
builds FROM (``base_images``: ``repository@sha256:…``). With the source
folder (``publish_release --source DIR``) publishing adds what only the
vendor can vouch for: the tree digest of the folder and each base image's
config digest (from the registry), and refuses a Dockerfile that could not
build offline. ``build_bundle --source DIR`` then ships that same folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clms_updates.manifest.bundle import tree_digest, tree_entries
from clms_updates.manifest.dockerfile import offline_problems
from vendor_server import registry


def prepare(
    source: dict[str, Any], folder: Path | None
) -> tuple[dict[str, Any], list[str]]:
    """The manifest's ``source`` for ``source`` as given and ``folder``; or the problems."""
    problems: list[str] = []
    if folder is None:
        return source, [
            "a source release needs its source folder (publish_release --source DIR) "
            "to sign the tree digest"
        ]
    if not folder.is_dir():
        return source, [f"the source folder {folder} does not exist"]
    try:
        entries = tree_entries(folder)
    except (ValueError, OSError) as e:
        return source, [str(e)]
    dockerfile = str(source.get("dockerfile") or "Dockerfile")
    path = folder / dockerfile
    if not path.is_file():
        return source, [f"the source has no {dockerfile}"]
    bases = [
        b if isinstance(b, str) else str((b or {}).get("reference", ""))
        for b in source.get("base_images") or []
    ]
    problems += offline_problems(
        path.read_text(errors="replace"), bases, name=dockerfile
    )
    resolved = []
    for reference in bases:
        try:
            blob = registry.fetch_manifest(reference)
            resolved.append(
                {
                    "reference": reference,
                    "config": registry.config_digest(blob, reference),
                }
            )
        except registry.RegistryError as e:
            problems.append(f"base image {reference}: {e}")
    prepared = {
        **source,
        "dockerfile": dockerfile,
        "base_images": resolved,
        "sha256": tree_digest(entries),
    }
    return prepared, problems


def check_folder(folder: Path, signed_sha256: str) -> int:
    """The number of files in ``folder``; ``ValueError`` unless it is the signed tree."""
    entries = tree_entries(folder)
    if tree_digest(entries) != signed_sha256:
        raise ValueError(
            f"the source folder {folder} is not the one the release signed (its tree "
            f"digest is {tree_digest(entries)}, the manifest's {signed_sha256})"
        )
    return len(entries)
