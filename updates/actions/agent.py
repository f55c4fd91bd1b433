"""Actions on what the agent knows and how it is set up: checks, windows, bundles.

Checking for updates, scanning the offline folder, fetching a bundle from the
LAN mirror, replacing the maintenance windows or blackouts, and hiding a
release's banner. Each is audited when a person asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import models, transaction

from clms_updates import audit
from clms_updates.actions import ActionRefused, Actor
from updates import checking
from updates.actions import rules
from updates.actions.runs import cancel_run
from updates.mirror import serving as mirror
from updates.models import (
    AgentState,
    AvailableRelease,
    BannerDismissal,
    BlackoutPeriod,
    MaintenanceWindow,
    OfflineBundle,
    UpdateCheck,
    UpdateRun,
)
from updates.offline import scan_offline_folder
from updates.sources import SourceRefused

logger = logging.getLogger(__name__)


WITHDRAWN_REASON = (
    "withdrawn by the vendor: CLMS {version} is no longer listed in the vendor's "
    "signed release index (index sequence {sequence}), so it will not be installed; "
    "nothing was changed on this installation"
)


def check_for_updates(
    *, actor: Actor, trigger: str = UpdateCheck.Trigger.MANUAL
) -> UpdateCheck:
    """Check every source now, then cancel runs of releases the vendor withdrew.

    Audited when a person asked (not the periodic check).
    """
    rules.require_admin(actor)
    check = checking.run_check(trigger=trigger, user=actor.user)
    if trigger == UpdateCheck.Trigger.MANUAL:
        audit.record(
            "updates.check",
            actor=actor,
            target=f"check {check.pk}",
            outcome=check.outcome,
            reason=check.reason[:500],
            found_version=check.found_version,
        )
    cancel_withdrawn_runs()
    return check


def cancel_withdrawn_runs() -> list[int]:
    """Cancel every scheduled run of a withdrawn release (the system acts), audited."""
    cancelled = []
    scheduled = UpdateRun.objects.filter(
        state=UpdateRun.State.SCHEDULED, release__withdrawn_at__isnull=False
    ).select_related("release")
    for run in scheduled:
        assert run.release is not None
        reason = WITHDRAWN_REASON.format(
            version=run.release.version, sequence=AgentState.load().highest_sequence
        )
        try:
            cancel_run(run.pk, actor=Actor.system(), reason=reason, code="withdrawn")
        except ActionRefused:
            # It started (or ended) meanwhile: a running update is not stopped.
            logger.warning(
                "Run %s of withdrawn CLMS %s was no longer scheduled; left alone",
                run.pk,
                run.release.version,
            )
            continue
        cancelled.append(run.pk)
    return cancelled


def scan_offline(*, actor: Actor) -> list[OfflineBundle]:
    """Look at the offline folder now (not waiting for the periodic scan), audited."""
    rules.require_admin(actor)
    folder = settings.UPDATES_OFFLINE_DIR
    created = not folder.exists()
    touched = scan_offline_folder(settle=False, create=True)
    audit.record(
        "updates.bundle.scan",
        actor=actor,
        target=str(folder),
        found=[f"{b.file_name}: {b.state}" for b in touched],
        created_folder=created,
    )
    return touched


def download_bundle(version: str, *, actor: Actor) -> list[OfflineBundle]:
    """Fetch a release's bundle from the LAN mirror into the offline folder, then scan."""
    rules.require_admin(actor)
    try:
        path = mirror.download_bundle(version)
    except (mirror.MirrorUnavailable, SourceRefused) as e:
        raise ActionRefused(
            f"The bundle of CLMS {version} could not be fetched from the mirror: {e}",
            code="mirror_unavailable",
            conflict=True,
        ) from None
    touched = scan_offline_folder(settle=False)
    audit.record(
        "updates.bundle.download", actor=actor, target=path.name, version=version
    )
    return touched


def _replace_list(
    model: type[models.Model],
    items: list[dict[str, Any]],
    *,
    actor: Actor,
    action: str,
    serialise: Callable[[models.Model], dict[str, Any]],
) -> list[models.Model]:
    with transaction.atomic():
        model._default_manager.all().delete()
        rows = [model._default_manager.create(**item) for item in items]
        audit.record(action, actor=actor, items=[serialise(r) for r in rows])
    return rows


def replace_windows(
    items: list[dict[str, Any]], *, actor: Actor
) -> list[MaintenanceWindow]:
    """Replace every maintenance window at once (school time), audited."""
    rules.require_admin(actor)
    rows = _replace_list(
        MaintenanceWindow,
        items,
        actor=actor,
        action="updates.windows",
        serialise=lambda w: {
            "weekdays": w.weekdays,  # type: ignore[attr-defined]
            "start": f"{w.start:%H:%M}",  # type: ignore[attr-defined]
            "end": f"{w.end:%H:%M}",  # type: ignore[attr-defined]
            "enabled": w.enabled,  # type: ignore[attr-defined]
        },
    )
    return rows  # type: ignore[return-value]


def replace_blackouts(
    items: list[dict[str, Any]], *, actor: Actor
) -> list[BlackoutPeriod]:
    """Replace every blackout period at once, audited."""
    rules.require_admin(actor)
    rows = _replace_list(
        BlackoutPeriod,
        items,
        actor=actor,
        action="updates.blackouts",
        serialise=lambda b: {
            "start_date": b.start_date.isoformat(),  # type: ignore[attr-defined]
            "end_date": b.end_date.isoformat(),  # type: ignore[attr-defined]
            "reason": b.reason,  # type: ignore[attr-defined]
        },
    )
    return rows  # type: ignore[return-value]


def dismiss_banner(version: str, *, actor: Actor) -> AvailableRelease:
    """Hide an optional release's banner for this person on every device."""
    release = AvailableRelease.objects.filter(version=version).first()
    if release is None:
        raise ActionRefused(
            "That release is no longer available; there is nothing to hide.",
            code="unknown_release",
            field="version",
        )
    if release.critical:
        raise ActionRefused(
            f"CLMS {release.version} is a critical update, so its notice cannot be "
            "hidden; it stays until the update is installed. Open Updates to "
            "schedule it.",
            code="critical",
            field="version",
            conflict=True,
        )
    if actor.user is None:
        raise ActionRefused(
            "Only a logged-in person can hide a notice.", code="no_user"
        )
    BannerDismissal.record(actor.user, release)
    return release
