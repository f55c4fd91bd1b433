"""What a run writes into the school's project, before ``up`` applies it.

- a format-2 release: the vendor's project rendered with the school's values
  (an installation not adopted yet is adopted here: its old env file's values
  start the managed ``.env``);
- a format-1 (image-only) release on a project not adopted yet: the same
  files with the image variables in the env file changed;
- a format-1 release on a managed project: the installed release's project
  again, with the release's images in place of the old ones.

Each is staged first (``stage``: written under ``.clms/staging/``, checked by
compose and by the policy) and only then put in place (``install``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from clms_updates.manifest import ReleaseManifest
from updates.compose import policy, project, stack
from updates.compose.project import Layout, ProjectError
from updates.compose.values import set_values


def image_variable(service: str) -> str:
    """The env variable holding ``service``'s image in a project not adopted yet."""
    return settings.CLMS_COMPOSE_IMAGE_VARIABLES.get(
        service, f"CLMS_{service.upper().replace('-', '_')}_IMAGE"
    )


def staging_dir(layout: Layout, run_id: int) -> Path:
    return layout.directory / project.STATE_NAME / "staging" / f"run-{run_id}"


def stage(
    layout: Layout,
    manifest: ReleaseManifest | None,
    images: dict[str, str],
    *,
    run_id: int,
) -> Layout:
    """Write the target project under ``.clms/staging/run-<id>/``; its layout.

    ``images`` (service -> what to run) are the release's images as fetched
    (an offline image may run by its id).
    """
    folder = staging_dir(layout, run_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    current = project.read_env(layout.env_file)
    if manifest is not None and manifest.compose is not None:
        return _stage_compose(layout, folder, manifest, images, current)
    if layout.managed:
        return _stage_managed_images(layout, folder, images, current)
    return _stage_variables(layout, folder, images, current)


def _stage_compose(
    layout: Layout,
    folder: Path,
    manifest: ReleaseManifest,
    images: dict[str, str],
    current: dict[str, str],
) -> Layout:
    project_data = json.loads(json.dumps(manifest.compose))
    for service, image in images.items():
        if service in project_data["services"]:
            project_data["services"][service]["image"] = image
    text = project.HEADER.format(version=manifest.version) + yaml.safe_dump(
        project_data, sort_keys=True
    )
    keep = {k: v for k, v in current.items() if not k.startswith("COMPOSE_")}
    defaults = {
        s.name: s.default
        for s in manifest.settings
        if s.default is not None and not keep.get(s.name)
    }
    files = [project.COMPOSE_NAME, project.OVERRIDE_NAME]
    project.write_atomically(folder / project.COMPOSE_NAME, text)
    project.write_env(
        folder / project.ENV_NAME,
        {"COMPOSE_PROJECT_NAME": layout.name, "COMPOSE_FILE": ":".join(files)},
        keep={**keep, **defaults},
    )
    staged = project.managed_layout(
        layout.directory,
        version=manifest.version,
        compose_sha256=project.sha256_text(text),
        name=layout.name,
    )
    staged.config_files = [folder / project.COMPOSE_NAME]
    staged.env_file = folder / project.ENV_NAME
    return staged


def _stage_managed_images(
    layout: Layout, folder: Path, images: dict[str, str], current: dict[str, str]
) -> Layout:
    data = yaml.safe_load(layout.config_files[0].read_text())
    header = layout.config_files[0].read_text().split("\n", 1)[0]
    for service, image in images.items():
        if service not in (data.get("services") or {}):
            raise ProjectError(
                f"The release updates {service}, which the installed project does not "
                "run; an image-only release cannot add a service. Nothing was changed."
            )
        data["services"][service]["image"] = image
    text = header + "\n" + yaml.safe_dump(data, sort_keys=True)
    project.write_atomically(folder / project.COMPOSE_NAME, text)
    project.write_env(folder / project.ENV_NAME, {}, keep=current)
    staged = project.managed_layout(
        layout.directory,
        version=layout.version,
        compose_sha256=project.sha256_text(text),
        name=layout.name,
    )
    staged.config_files = [folder / project.COMPOSE_NAME]
    staged.env_file = folder / project.ENV_NAME
    return staged


def _stage_variables(
    layout: Layout, folder: Path, images: dict[str, str], current: dict[str, str]
) -> Layout:
    chosen: dict[str, str] = {}
    for service, image in sorted(images.items()):
        variable = image_variable(service)
        if chosen.setdefault(variable, image) != image:
            raise ProjectError(
                f"Services share the env variable {variable} but the release gives "
                "them different images; map each to its own variable with "
                "CLMS_COMPOSE_IMAGE_VARIABLES. Nothing was changed."
            )
    target = folder / layout.env_file.name
    text = layout.env_file.read_text()
    project.write_atomically(target, text, mode=0o600)
    set_values(target, chosen)
    staged = Layout.from_dict(layout.as_dict())
    staged.env_file = target
    return staged


def check_policy(staged: Layout, manifest: ReleaseManifest | None) -> None:
    """The staged project, as compose resolves it, against the school's policy.

    Only a release's own project is held to it (an image-only release changes
    images, not the school's file); the school's override file is its own.
    """
    if manifest is None or manifest.compose is None:
        return
    resolved = stack.resolved(staged, with_override=False)
    policy.check(resolved, version=manifest.version)


def install(staged: Layout, layout: Layout) -> Layout:
    """Put the staged files in place; the layout compose now runs with."""
    if staged.managed:
        project.ensure_override(layout.directory)
        final = project.managed_layout(
            layout.directory,
            version=staged.version,
            compose_sha256=staged.compose_sha256,
            name=layout.name,
        )
        project.write_atomically(
            final.config_files[0], staged.config_files[0].read_text()
        )
        project.write_atomically(
            final.env_file, staged.env_file.read_text(), mode=0o600
        )
        project.record(final)
        return final
    project.write_atomically(layout.env_file, staged.env_file.read_text(), mode=0o600)
    return layout


def discard(layout: Layout, run_id: int) -> None:
    shutil.rmtree(staging_dir(layout, run_id), ignore_errors=True)


def snapshot_path(layout: Layout, run_id: int) -> Path:
    return layout.directory / project.STATE_NAME / "snapshots" / f"run-{run_id}.json"


def save_snapshot(layout: Layout, run_id: int) -> Path:
    """Keep the project's files as they are now, for a rollback of this run (0600)."""
    path = snapshot_path(layout, run_id)
    if not path.exists():
        data: dict[str, Any] = project.snapshot(layout).as_dict()
        project.write_atomically(path, json.dumps(data), mode=0o600)
    return path


def load_snapshot(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ProjectError(
            f"The saved project {path} cannot be read ({e}); it cannot be brought "
            "back automatically."
        ) from None
    return data
