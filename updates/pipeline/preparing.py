"""The steps before anything changes: preflight, fetch, verify, backup, maintenance.

Every step function takes the ``Context`` and returns a short summary for the
step record, or raises ``StepFailed``. A failure here leaves CLMS untouched
(until ``maintenance_on`` marks the run as changed).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
from django.conf import settings

from backups import operations as backups
from backups.errors import BackupError
from backups.models import Backup
from clms_updates import composecli as cli
from clms_updates.files import free_bytes
from updates import offline, runtime
from updates.compose import policy, project, stack, targets, values
from updates.models import UpdateRun
from updates.pipeline import health, maintenance
from updates.pipeline.context import Context
from updates.pipeline.errors import NeedsInput, StepFailed
from updates.pipeline.plan import check_version_rules
from updates.pipeline.records import save_checkpoint


def hold_name(run: UpdateRun) -> str:
    """The retention hold on the backup taken for ``run``."""
    return f"update-run:{run.pk}"


# ---------------------------------------------------------------------------
# preflight
# ---------------------------------------------------------------------------


def preflight(ctx: Context) -> str:
    """Engine, compose, the project, the release's settings and policy, disk,
    backup target and current health are fine; nothing is changed here."""
    client = ctx.client
    try:
        engine = runtime.engine_version(client)
    except runtime.DockerUnavailable as e:
        raise StepFailed("docker_unavailable", str(e), transient=True) from None
    try:
        compose = cli.find_cli()
    except cli.ComposeUnavailable as e:
        raise StepFailed("compose_missing", f"{e} Nothing was changed.") from None
    running = stack.service_containers(client, ctx.project)
    if not running:
        raise StepFailed(
            "services_not_found",
            f"No container carries the label com.docker.compose.project={ctx.project}. "
            "Check that the CLMS stack is running and that CLMS_COMPOSE_PROJECT is the "
            "name `docker compose ls` shows. Nothing was changed.",
        )
    labels = [c.labels for containers in running.values() for c in containers]
    try:
        layout = project.current_layout(labels)
    except project.ProjectError as e:
        raise StepFailed("project_unknown", str(e)) from None
    _check_services(ctx, running)
    _check_settings(ctx, layout)
    _check_policy(ctx, layout)
    _check_disk(client, pull_mb=_pull_estimate_mb(ctx, running))
    try:
        backups.check_target_writable()
    except BackupError as e:
        raise StepFailed(
            "backup_target",
            f"The backup target is not usable, so no safe update is possible: {e} "
            "Nothing was changed.",
        ) from None
    if ctx.run.kind == UpdateRun.Kind.UPDATE:
        _check_current_health(ctx)
    previous = {
        service: {
            "image": c.attrs["Config"].get("Image", ""),
            "image_id": c.attrs["Image"],
        }
        for service, containers in running.items()
        for c in containers[:1]
    }
    save_checkpoint(ctx.run, layout=layout.as_dict(), previous=previous)
    drift = stack.drift(layout, client)
    note = f"; it undoes hand edits: {'; '.join(drift)}" if drift else ""
    adopted = "" if layout.managed else " (not adopted yet)"
    return (
        f"Docker {engine['version']}, {compose.label}; project {layout.name} in "
        f"{layout.directory}{adopted}; services {', '.join(sorted(running))}{note}"
    )


def _check_services(ctx: Context, running: dict[str, list[object]]) -> None:
    """An image-only release can only change services that run already."""
    manifest = ctx.plan.manifest
    if ctx.plan.restore_from is not None or (manifest and manifest.compose):
        return
    missing = sorted(set(ctx.plan.images) - set(running))
    if missing:
        raise StepFailed(
            "service_missing",
            f"The release updates the service(s) {', '.join(missing)}, which the "
            f"compose project {ctx.project!r} does not run (it runs "
            f"{', '.join(sorted(running))}). An image-only release cannot add "
            "services; check CLMS_COMPOSE_PROJECT. Nothing was changed.",
        )


def _check_settings(ctx: Context, layout: project.Layout) -> None:
    """Every required setting has a value; else the run waits for the admin."""
    manifest = ctx.plan.manifest
    if manifest is None or not manifest.settings:
        return
    gaps = values.missing(manifest, project.read_env(layout.env_file))
    if gaps:
        raise NeedsInput(gaps)


def _check_policy(ctx: Context, layout: project.Layout) -> None:
    """Stage the release's project and hold it (as compose reads it) to the policy."""
    manifest = ctx.plan.manifest
    if ctx.plan.restore_from is not None or manifest is None or not manifest.compose:
        return
    try:
        staged = targets.stage(layout, manifest, ctx.plan.images, run_id=ctx.run.pk)
        targets.check_policy(staged, manifest)
    except policy.PolicyRefused as e:
        raise StepFailed("policy_refused", str(e)) from None
    except (project.ProjectError, cli.ComposeFailed) as e:
        raise StepFailed(
            "project_invalid",
            f"The release's compose project cannot be used here: {e} Nothing was "
            "changed.",
        ) from None
    finally:
        targets.discard(layout, ctx.run.pk)


def _check_current_health(ctx: Context) -> None:
    spec = health.for_version(
        replace(ctx.plan.health, successes=1),
        written_for=ctx.plan.to_version,
        version=ctx.run.from_version,
    )
    try:
        health.wait_healthy(
            spec,
            expect_version=ctx.run.from_version,
            timeout_seconds=settings.UPDATES_PREFLIGHT_HEALTH_SECONDS,
            code="stack_unhealthy",
        )
    except StepFailed as e:
        raise StepFailed(
            "stack_unhealthy",
            f"CLMS {ctx.run.from_version} is not healthy before the update "
            f"({e.message}) An update now could not tell its own failure from "
            "this one; fix the stack first. Nothing was changed.",
        ) from None


def _pull_estimate_mb(ctx: Context, running: dict[str, list[Any]]) -> int:
    """About how many MB the images this run must pull take on disk.

    An image already here costs nothing. One to pull is estimated by the size of
    the image its service runs now (a new release of a service is about its
    size); a new service's image cannot be known before the pull and counts 0.
    """
    total = 0
    for service, reference in ctx.plan.images.items():
        if "@" not in reference:
            continue  # a rollback to an image kept here
        try:
            if local_image(ctx.client, reference) is not None:
                continue
        except runtime.ImageReferenceRefused:
            continue  # refused by the fetch step, with its reason
        containers = running.get(service) or []
        try:
            size = int(containers[0].image.attrs.get("Size") or 0) if containers else 0
        except docker.errors.DockerException:
            size = 0
        total += size
    return total // (1024 * 1024)


def _check_disk(client: docker.DockerClient, *, pull_mb: int = 0) -> None:
    minimum = settings.UPDATES_MIN_FREE_DISK_MB
    places = [(Path(settings.BACKUP_DIR), 0)]
    try:
        root = client.info().get("DockerRootDir")
    except docker.errors.DockerException:
        root = None
    if root:
        places.append((Path(root), pull_mb))
    for place, pulled in places:
        free_mb = free_bytes(place) // (1024 * 1024)
        needed = minimum + pulled
        if free_mb < needed:
            pulls = (
                f" plus about {pulled} MB for the images this update pulls "
                "(estimated from the images they replace)"
                if pulled
                else ""
            )
            raise StepFailed(
                "low_disk",
                f"Only {free_mb} MB are free at {place}; an update needs at least "
                f"{minimum} MB there (UPDATES_MIN_FREE_DISK_MB){pulls} for the images "
                "and the backup. Free some space (the Disk card on the Updates page "
                "shows what CLMS takes); nothing was changed.",
            )


# ---------------------------------------------------------------------------
# fetch, verify
# ---------------------------------------------------------------------------


def local_image(client: docker.DockerClient, reference: str) -> str | None:
    """What to run for the signed ``repo@sha256:…`` without pulling, if anything.

    - The image is in the engine under that digest (pulled earlier, or on a
      machine that already has it) and its RepoDigests carry it: the
      reference itself.
    - An offline bundle's image: ``docker load`` keeps no RepoDigests, so the
      engine cannot vouch for it; the loader proved the chain (the bundle's
      registry manifest hashes to the signed digest and names the config
      digest that is the loaded image's id) and recorded it on the bundle.
      That image id.
    - Otherwise None: it must be pulled.
    """
    runtime.parse_digest_reference(reference)  # refuses tags and malformed digests
    try:
        runtime.verify_image_digest(client.images.get(reference), reference)
    except (docker.errors.APIError, runtime.ImageMismatch):
        pass  # not here under that digest (ImageNotFound is an APIError)
    else:
        return reference
    return offline.local_image_for(reference, client=client)


def fetch(ctx: Context) -> str:
    """Pull every image by digest (unless it is here and matched), with bytes and an ETA."""
    references = ctx.plan.references
    present: dict[str, str] = _build_source(ctx)
    for number, reference in enumerate(references, start=1):
        if reference in present:
            continue
        if "@" not in reference:
            # A rollback to an image known only by id: it must still be here.
            _require_local(ctx, reference)
            continue
        try:
            here = local_image(ctx.client, reference)
        except runtime.ImageReferenceRefused as e:
            raise StepFailed("digest_mismatch", str(e)) from None
        if here is not None:
            present[reference] = here
            continue
        last = [0.0]

        def report(
            done: int, total: int, number: int = number, last: list[float] = last
        ) -> None:
            now = time.monotonic()
            if now - last[0] < 0.5 or not total:
                return
            last[0] = now
            ctx.report(
                (number - 1 + done / total) / len(references),
                f"Downloading image {number} of {len(references)}: "
                f"{done / 1e6:.1f} of {total / 1e6:.1f} MB",
            )

        try:
            runtime.pull_by_digest(ctx.client, reference, progress=report)
        except (runtime.ImageMismatch, runtime.ImageReferenceRefused) as e:
            raise StepFailed("digest_mismatch", str(e)) from None
        except (runtime.ImageNotAvailable, runtime.DockerUnavailable) as e:
            raise StepFailed("pull_failed", str(e), transient=True) from None
        ctx.check_lease()
    # apply and migrate run what is recorded here (an offline image by its id).
    save_checkpoint(ctx.run, local_images=present)
    signed = [r for r in references if "@" in r]
    pulled = len([r for r in signed if r not in present])
    loaded = len([r for r in signed if r in present and present[r] != r])
    unchanged = len([r for r in signed if present.get(r) == r])
    parts = [f"{pulled} image(s) pulled by digest"]
    if unchanged:
        parts.append(f"{unchanged} already in the engine under the signed digest")
    if loaded:
        parts.append(f"{loaded} loaded from a verified offline bundle")
    manifest = ctx.plan.manifest
    if manifest is not None and manifest.source is not None:
        parts.append(
            f"{manifest.source.image} built offline from the signed source "
            f"(sha256 {manifest.source.sha256[:12]}…) as {present[manifest.source.image]}"
        )
    return "; ".join(parts)


def _build_source(ctx: Context) -> dict[str, str]:
    """A source release: build its image offline now, before anything changes."""
    manifest = ctx.plan.manifest
    if manifest is None or manifest.source is None:
        return {}
    source = manifest.source
    ctx.report(0, f"Building {source.image} from the signed source (no network)")
    lines = [0]

    def on_line(line: str) -> None:
        lines[0] += 1
        ctx.report(min(0.9, lines[0] / 50), f"Build: {line[:300]}")

    try:
        built = offline.build_source(manifest, ctx.client, on_line=on_line)
    except offline.BuildFailed as e:
        raise StepFailed("build_failed", str(e)) from None
    ctx.check_lease()
    return {source.image: built}


def _verify_built(ctx: Context) -> None:
    """The image built from source still carries the signed source digest."""
    manifest = ctx.plan.manifest
    if manifest is None or manifest.source is None:
        return
    use = ctx.image_for_reference(manifest.source.image)
    try:
        labels = ctx.client.images.get(use).labels or {}
    except docker.errors.ImageNotFound:
        labels = {}
    if labels.get(offline.SOURCE_LABEL) != manifest.source.sha256:
        raise StepFailed(
            "digest_mismatch",
            f"The image built from source ({use}) is gone or no longer carries the "
            "signed source digest; it was not used and nothing was changed.",
        )


def _require_local(ctx: Context, reference: str) -> None:
    try:
        ctx.client.images.get(reference)
    except docker.errors.ImageNotFound:
        raise StepFailed(
            "image_missing",
            f"The image {reference} is no longer in the Docker engine, so it cannot "
            "be brought back; nothing was changed.",
        ) from None


def verify(ctx: Context) -> str:
    """Version rules hold and every pulled image carries its signed digest."""
    check_version_rules(ctx.run, ctx.plan)
    _verify_built(ctx)
    for reference in ctx.plan.references:
        if "@" not in reference:
            continue
        use = ctx.image_for_reference(reference)
        if use != reference:
            # An offline image: the loader's record must still vouch for it.
            if offline.local_image_for(reference, client=ctx.client) != use:
                raise StepFailed(
                    "digest_mismatch",
                    f"The offline image {use} is no longer recorded as the signed "
                    f"{reference} by a verified bundle (or is gone from the engine); "
                    "it was not used and nothing was changed. Scan the bundle again.",
                )
            continue
        try:
            image = ctx.client.images.get(reference)
            runtime.verify_image_digest(image, reference)
        except docker.errors.ImageNotFound:
            raise StepFailed(
                "image_missing",
                f"{reference} was pulled but is gone from the engine; nothing was "
                "changed. Try again.",
            ) from None
        except runtime.ImageMismatch as e:
            raise StepFailed("digest_mismatch", str(e)) from None
    signed = [r for r in ctx.plan.references if "@" in r]
    built = (
        "; the built image carries the signed source digest"
        if ctx.plan.manifest is not None and ctx.plan.manifest.source is not None
        else ""
    )
    return f"signature and {len(signed)} digest(s) verified{built}"


# ---------------------------------------------------------------------------
# backup, maintenance
# ---------------------------------------------------------------------------


def backup(ctx: Context) -> str:
    """A verified backup of the CLMS database, held until the run ends."""
    run = ctx.run
    if run.backup_id:
        existing = Backup.objects.filter(
            pk=run.backup_id, status=Backup.Status.VERIFIED
        ).first()
        if existing is not None:
            return f"backup {existing.name} (verified) kept from an earlier pass"
    try:
        made = backups.create_verified_backup(
            reason=f"Before CLMS {run.from_version} -> {run.to_version} (run {run.pk})",
            clms_version=run.from_version,
            hold=hold_name(run),
            user=run.requested_by,
        )
    except BackupError as e:
        raise StepFailed(
            "backup_failed",
            f"The backup before the update failed: {e} The update did not start; "
            "nothing was changed.",
        ) from None
    run.backup_id = made.pk
    run.save(update_fields=["backup_id"])
    return f"backup {made.name} verified ({made.size or 0} bytes)"


def maintenance_on(ctx: Context) -> str:
    """From here on a failure rolls back; CLMS shows its maintenance message."""
    save_checkpoint(ctx.run, changed=True)
    path = maintenance.enter(
        ctx.run.pk,
        f"CLMS is being updated to {ctx.run.to_version}; please try again in a few "
        "minutes.",
    )
    return f"maintenance flag at {path}"
