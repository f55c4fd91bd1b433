"""Actions on what the agent knows and how it is set up: checks, windows, bundles.

Checking for updates, scanning the offline folder, fetching a bundle from the
LAN mirror, replacing the maintenance windows or blackouts, and hiding a
release's banner, taking a support bundle. Each is audited when a person asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from clms_updates import audit
from clms_updates import composecli as cli
from clms_updates.actions import ActionRefused, Actor
from clms_updates.manifest import ManifestError
from updates import checking, runtime, scheduling, support
from updates.actions import rules
from updates.actions.runs import cancel_run, start_if_due
from updates.actions.selfupdate import plan_critical_agent_update
from updates.compose import project, standing
from updates.compose import stack as compose_stack
from updates.compose.values import declared_settings, set_values
from updates.compose.values import missing as missing_values
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
from updates.selfupdate import checking as agent_checking
from updates.sources import SourceError, SourceNotConfigured, SourceRefused
from updates.trust import CheckRefused

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
    _check_agent_releases()
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


RECENT_CHECK_SECONDS = 60


def recent_check_or_new(*, actor: Actor) -> UpdateCheck:
    """A check finished in the last ``RECENT_CHECK_SECONDS``, or a new one.

    For requests a page of another site could make a browser send (a GET with
    the session cookie): however often they come, the agent checks at most
    once a minute for them.
    """
    rules.require_admin(actor)
    since = timezone.now() - timedelta(seconds=RECENT_CHECK_SECONDS)
    recent = (
        UpdateCheck.objects.filter(finished_at__gte=since)
        .order_by("-finished_at")
        .first()
    )
    return recent or check_for_updates(actor=actor)


def _check_agent_releases() -> None:
    """The agent's own releases, after CLMS's (never failing the CLMS check)."""
    if not settings.UPDATES_VENDOR_URL:
        return
    try:
        found = agent_checking.check_agent_releases()
    except (SourceError, CheckRefused, ManifestError, SourceNotConfigured) as e:
        logger.warning("Checking for agent releases failed: %s", e)
        return
    if found.release is not None:
        plan_critical_agent_update(found.release)


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


def school_layout() -> project.Layout:
    """The school's compose project (where its settings live), or refused saying why."""
    try:
        return compose_stack.locate_school_project()
    except (project.ProjectError, runtime.DockerUnavailable) as e:
        raise ActionRefused(str(e), code="project_unknown", conflict=True) from None


def check_drift(*, actor: Actor) -> list[str]:
    """Compare the running stack with its project now, and note what differs.

    Beat runs this between updates (``UPDATES_DRIFT_CHECK_MINUTES``) so that a
    hand edit shows on the update manager before the next update undoes it;
    it is never checked while a run changes the stack.
    """
    rules.require_admin(actor)
    rules.require_no_active_run()
    layout = school_layout()
    try:
        return standing.record(layout, runtime.docker_client())
    except (runtime.DockerUnavailable, cli.ComposeFailed) as e:
        raise ActionRefused(
            f"The stack could not be compared with its project: {e}",
            code="drift_check_failed",
            conflict=True,
        ) from None


def provide_settings(
    values: dict[str, str], *, actor: Actor, now: datetime | None = None
) -> list[str]:
    """Store the school's values for the settings releases declare, audited.

    The values go into the project's env file (0600); secrets are never
    shown or logged again. A run waiting for these values is scheduled again:
    now if it was started by hand or a window is open, else in the next window.
    """
    rules.require_admin(actor)
    now = rules.now_or(now)
    declared = declared_settings()
    for name, value in values.items():
        setting = declared.get(name)
        if setting is None:
            raise ActionRefused(
                f"{name} is not a setting any available release asks for.",
                code="unknown_setting",
                field=name,
            )
        if not value.strip() and setting.required:
            raise ActionRefused(
                f"{name} is required by CLMS; give it a value.",
                code="value_required",
                field=name,
            )
    layout = school_layout()
    given = {name: value.strip() for name, value in values.items() if value.strip()}
    try:
        set_values(layout.env_file, given)
    except project.ProjectError as e:
        which = next((n for n in given if n in str(e)), None)
        raise ActionRefused(str(e), code="bad_value", field=which) from None
    with transaction.atomic():
        audit.record(
            "updates.settings",
            actor=actor,
            target=str(layout.env_file),
            names=sorted(given),
            secrets=sorted(n for n in given if declared[n].secret),
        )
        _resume_waiting_run(layout, now)
    return sorted(given)


def _resume_waiting_run(layout: project.Layout, now: datetime) -> None:
    """The run that waited for settings goes ahead once none is missing."""
    run = UpdateRun.objects.filter(state=UpdateRun.State.WAITING).first()
    if run is None or run.release is None:
        return
    manifest = run.release.manifest()
    if missing_values(manifest, project.read_env(layout.env_file)):
        return
    if run.forced or scheduling.is_inside_window(now):
        at = now
    else:
        try:
            at = scheduling.next_window_start(now)
        except scheduling.SchedulingError:
            at = now
    run.resume_after_input(at)
    scheduling.plan_trigger(run, at)
    start_if_due(run, now)


def make_support_bundle(*, actor: Actor) -> tuple[str, bytes]:
    """The support bundle for the vendor (``updates.support``), audited: who took
    a copy of the installation's state, and how big it was."""
    rules.require_admin(actor)
    name, data = support.build()
    audit.record("updates.support_bundle", actor=actor, target=name, size=len(data))
    return name, data
