"""What a run moves the stack to: images per service, health check, migration.

An update's plan comes from its release manifest, verified again against the
pinned keys right before use. A rollback run's plan comes from the update it
undoes: the images that update replaced (recorded in its checkpoint) and the
health check of that release. A rollback never migrates: migrations only
add, so the older version runs on the newer schema, and restoring the data
would throw away everything written since the update.
"""

from __future__ import annotations

from dataclasses import dataclass

import semver

from clms_updates.manifest import (
    HealthCheck,
    ManifestError,
    Migration,
    ReleaseManifest,
    parse_version,
)
from updates import trust
from updates.models import AgentState, UpdateRun
from updates.pipeline.errors import StepFailed
from updates.pipeline.health import for_version


@dataclass(frozen=True)
class Plan:
    """The target of a run.

    An update carries its verified ``manifest`` (a format-2 one brings its whole
    compose project); a rollback run brings back the project saved before the
    update it undoes (``restore_from``, that update's run id).
    """

    to_version: str
    images: dict[str, str]
    health: HealthCheck
    migration: Migration | None
    min_version: str | None = None
    manifest: ReleaseManifest | None = None
    restore_from: int | None = None

    @property
    def backward_compatible(self) -> bool:
        """The release says the previous version runs on its migrated schema."""
        return bool(self.migration and self.migration.backward_compatible)

    @property
    def references(self) -> list[str]:
        """Each distinct image reference once, in service order."""
        return list(dict.fromkeys(self.images[s] for s in sorted(self.images)))


def plan_for(run: UpdateRun) -> Plan:
    """The plan of ``run``, or ``StepFailed`` saying why there is none."""
    if run.kind == UpdateRun.Kind.ROLLBACK:
        return _rollback_plan(run)
    if run.release is None:
        raise StepFailed(
            "no_release",
            f"Run {run.pk} names no verified release; nothing was changed. Check "
            "for updates and schedule the release again.",
        )
    try:
        manifest = trust.verify_release(run.release)
    except (trust.CheckRefused, ManifestError) as e:
        raise StepFailed(
            "verification_failed",
            f"The stored release {run.release.version} did not verify ({e}); it was "
            "not applied and nothing was changed. Check for updates again.",
        ) from None
    images = {image.service: image.reference for image in manifest.images}
    if manifest.source is not None:
        # A source release's built services run the image the build tags.
        images.update(dict.fromkeys(manifest.source.services, manifest.source.image))
    return Plan(
        to_version=manifest.version,
        images=images,
        health=manifest.health,
        migration=manifest.migration,
        min_version=manifest.min_version,
        manifest=manifest,
    )


def update_being_undone(run: UpdateRun) -> UpdateRun | None:
    """The successful update that put the installed version in place (for a rollback)."""
    return (
        UpdateRun.objects.filter(
            kind=UpdateRun.Kind.UPDATE,
            state=UpdateRun.State.SUCCEEDED,
            to_version=run.from_version,
            from_version=run.to_version,
        )
        .exclude(pk=run.pk)
        .order_by("-finished_at", "-id")
        .first()
    )


def _rollback_plan(run: UpdateRun) -> Plan:
    source = update_being_undone(run)
    previous = (source.checkpoint.get("previous") or {}) if source else {}
    if source is None or not previous or not source.checkpoint.get("snapshot"):
        raise StepFailed(
            "no_previous_version",
            f"No record of the project CLMS {run.to_version} ran before the update to "
            f"{run.from_version}, so it cannot be brought back automatically; nothing "
            "was changed. Restore it by hand from a copy of the compose project.",
        )
    images: dict[str, str] = {
        service: str(item["image_id"]) for service, item in previous.items()
    }
    health = HealthCheck()
    if source.release is not None:
        # The check was written for the version being undone; the older one
        # is expected wherever it names that version.
        health = for_version(
            source.release.manifest().health,
            written_for=run.from_version,
            version=run.to_version,
        )
    return Plan(
        to_version=run.to_version,
        images=images,
        health=health,
        migration=None,
        restore_from=source.pk,
    )


def check_version_rules(run: UpdateRun, plan: Plan) -> None:
    """An update never moves down, and only from a version its release allows."""
    installed = AgentState.load().installed_version
    target = parse_version(plan.to_version)
    current = parse_version(installed, field_name="installed version")
    if run.kind == UpdateRun.Kind.UPDATE:
        if target <= current:
            raise StepFailed(
                "not_an_upgrade",
                f"CLMS {plan.to_version} is not newer than the installed {installed}; "
                "an update never moves down (use a rollback). Nothing was changed.",
            )
        if plan.min_version and current < semver.Version.parse(plan.min_version):
            raise StepFailed(
                "min_version",
                f"CLMS {plan.to_version} can only be installed over "
                f"{plan.min_version} or later, and {installed} is installed; install "
                "the stepping-stone release first. Nothing was changed.",
            )
    if run.from_version != installed:
        raise StepFailed(
            "version_changed",
            f"Run {run.pk} was planned from CLMS {run.from_version} but {installed} "
            "is installed now; schedule it again. Nothing was changed.",
        )
