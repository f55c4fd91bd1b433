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
from django.conf import settings

from clms_updates.manifest import HealthCheck, ManifestError, Migration, parse_version
from updates import trust
from updates.models import AgentState, UpdateRun
from updates.pipeline.errors import StepFailed
from updates.pipeline.health import for_version


@dataclass(frozen=True)
class Plan:
    """The target of a run."""

    to_version: str
    images: dict[str, str]
    health: HealthCheck
    migration: Migration | None
    min_version: str | None = None

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
    return Plan(
        to_version=manifest.version,
        images={image.service: image.reference for image in manifest.images},
        health=manifest.health,
        migration=manifest.migration,
        min_version=manifest.min_version,
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
    if source is None or not previous:
        raise StepFailed(
            "no_previous_version",
            f"No record of the images CLMS {run.to_version} ran before the update to "
            f"{run.from_version}, so it cannot be brought back automatically; nothing "
            "was changed. Restore it by hand from the compose env file's history.",
        )
    images: dict[str, str] = {}
    for item in previous.values():
        images.setdefault(item["service"], item["image"])
    health = HealthCheck()
    if source.release is not None:
        # The check was written for the version being undone; the older one
        # is expected wherever it names that version.
        health = for_version(
            source.release.manifest().health,
            written_for=run.from_version,
            version=run.to_version,
        )
    return Plan(to_version=run.to_version, images=images, health=health, migration=None)


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


def image_variable(service: str) -> str:
    """The compose env file variable holding ``service``'s image reference."""
    return settings.CLMS_COMPOSE_IMAGE_VARIABLES.get(
        service, f"CLMS_{service.upper().replace('-', '_')}_IMAGE"
    )
