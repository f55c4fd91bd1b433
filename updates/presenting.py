"""Read-only queries behind the school pages: what the admin sees, in one place.

Pages show the same truth the API serves; this module only gathers and shapes it
(school time, step timelines, durations, safe changelog HTML). Anything that
changes the installation is an action (``updates.actions``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import markdown
import nh3
from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from clms_updates import health
from updates import disk, next_action, releases, runtime, scheduling, withdrawal
from updates.compose import project
from updates.compose import stack as compose_stack
from updates.compose.values import SettingState, declared_settings
from updates.enforcement.state import pending_critical_release
from updates.models import (
    AgentState,
    AvailableRelease,
    BannerDismissal,
    UpdateCheck,
    UpdateRun,
)
from updates.pipeline.rollback import ROLLBACK_STEPS
from updates.pipeline.steps import UPDATE_STEPS
from updates.selfupdate import checking as agent_checking

# The words the page uses for each step, from the pipeline's own tables (a step
# the pipeline reports that is in neither is shown under its own name).
STEP_LABELS = {step.name: step.label for step in (*UPDATE_STEPS, *ROLLBACK_STEPS)}

# Tags and attributes a changelog may use once rendered from Markdown.
CHANGELOG_TAGS = {
    "p",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "code",
    "pre",
    "h2",
    "h3",
    "h4",
    "blockquote",
    "a",
    "br",
}

SORTS: dict[str, tuple[Any, ...]] = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "version": ("-to_version", "-id"),
    "longest": (F("duration").desc(nulls_last=True), "-id"),
}


def render_changelog(text: str) -> SafeString:
    """A release's Markdown changelog as HTML that cannot run script or style."""
    html = markdown.markdown(text or "", extensions=["sane_lists"])
    # The vendor's text is signed, but it is still not trusted as HTML.
    clean = nh3.clean(
        html,
        tags=CHANGELOG_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"https", "http", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - nh3 removed everything unsafe


def to_school_time(moment: datetime | None) -> datetime | None:
    """An aware datetime shown in the school's zone."""
    if moment is None:
        return None
    return moment.astimezone(scheduling.school_zone())


def suggested_window(now: datetime | None = None) -> tuple[datetime | None, str]:
    """The start of the next maintenance window (UTC), or why there is none."""
    try:
        return scheduling.next_window_start(now or timezone.now()), ""
    except scheduling.SchedulingError as e:
        return None, str(e)


@dataclass(frozen=True)
class Deadline:
    """A critical release's deadline and how long is left (negative once passed)."""

    at: datetime
    seconds_left: int

    @property
    def passed(self) -> bool:
        return self.seconds_left <= 0


def deadline_of(
    release: AvailableRelease | None, now: datetime | None = None
) -> Deadline | None:
    if release is None or not release.critical or release.force_after is None:
        return None
    now = now or timezone.now()
    return Deadline(
        release.force_after, int((release.force_after - now).total_seconds())
    )


def banner_release(user: Any) -> AvailableRelease | None:
    """The release the banner tells ``user`` about, or None when there is none.

    A release the user hid (``BannerDismissal``) is left out, on every session and
    device; a critical release always shows, and a newer release shows again.
    An optional release rolled back here is not announced again.
    """
    release = releases.latest_release()
    if release is None or BannerDismissal.hides(user, release):
        return None
    if release.rolled_back and not release.critical:
        return None
    return release


def manager_context(now: datetime | None = None) -> dict[str, Any]:
    """Everything the update manager shows, from the rows the API reads too."""
    now = now or timezone.now()
    state = AgentState.load()
    release = releases.latest_release()
    window_at, window_problem = suggested_window(now)
    window_open = window_at is not None and window_at <= now
    active = UpdateRun.active()
    return {
        "agent": state,
        "release": release,
        "install_url": next_action.install_url(release) if release else "",
        "next_step": next_action.next_action(now),
        "changelog_html": render_changelog(release.changelog) if release else "",
        "deadline": deadline_of(release, now),
        "last_check": UpdateCheck.objects.select_related("requested_by").first(),
        "recent_checks": UpdateCheck.objects.select_related("requested_by")[:5],
        "active_run": active,
        "scheduled_runs": UpdateRun.objects.filter(
            state=UpdateRun.State.SCHEDULED
        ).select_related("requested_by"),
        "recent_runs": UpdateRun.objects.select_related("requested_by")[:5],
        "withdrawn_releases": withdrawal.withdrawn_releases(),
        "suggested_window": window_at,
        "window_open": window_open,
        "window_open_until": _open_slot_end(now) if window_open else None,
        "window_problem": window_problem,
        "previous_version": scheduling.previous_version(),
        "school_zone": settings.UPDATES_SCHOOL_TIME_ZONE,
        "backup_target": backup_target_description(),
        "settings": settings_overview(),
        "left_volumes": left_volumes(state),
        "agent_update": agent_update_overview(state),
        "disk": disk.disk_use(),
        "min_free_mb": settings.UPDATES_MIN_FREE_DISK_MB,
    }


def rollback_warning(target: str | None, now: datetime | None = None) -> str:
    """What going back to ``target`` does to a critical deadline, if anything."""
    if not target:
        return ""
    release = pending_critical_release(target)
    if release is None or release.force_after is None:
        return ""
    due = scheduling.format_school_time(release.force_after)
    if release.force_after <= (now or timezone.now()):
        return (
            f"CLMS {release.version} is a critical update and its deadline ({due}) "
            f"has passed: as soon as CLMS is back on {target} it is blocked, until "
            f"{release.version} or later is installed again or an admin grants an "
            "emergency override."
        )
    return (
        f"CLMS {release.version} is a critical update due by {due}: after the "
        f"rollback it must be installed again by then, or CLMS is blocked."
    )


def agent_update_overview(state: AgentState) -> dict[str, Any]:
    """The agent itself: which version runs, which one is offered, what waits."""
    return {
        "running": settings.AGENT_VERSION,
        "release": agent_checking.offered(),
        "pin": settings.UPDATES_AGENT_PIN,
        "pending": state.agent_update_pending,
        "not_before": state.agent_update_not_before,
        "run": UpdateRun.objects.filter(kind=UpdateRun.Kind.AGENT).first(),
    }


def _open_slot_end(now: datetime) -> datetime | None:
    slot = scheduling.slot_at(now)
    return slot.end if slot else None


def backup_target_description() -> str:
    """Where the pipeline's backup goes, in words for the confirmation step."""
    where = f"the local backup folder {settings.BACKUP_DIR}"
    if getattr(settings, "BACKUP_COPY_TARGET", "") == "s3":
        where += f", copied to S3 bucket {settings.BACKUP_S3_BUCKET}"
    return where


def agent_health() -> list[health.ComponentHealth]:
    """The agent's own components (engine, workers, Redis, database)."""
    return health.check_all()


def clms_health() -> health.ComponentHealth:
    """The installed CLMS app's own health check, asked once at ``CLMS_APP_URL``.

    The check is the one the installed release declared (its manifest), or the
    default ``/health`` expecting 200 when the release is not known here.
    """
    from clms_updates.manifest import HealthCheck
    from updates.pipeline.health import probe

    installed = AgentState.load().installed_version
    release = AvailableRelease.objects.filter(version=installed).first()
    spec = release.manifest().health if release is not None else HealthCheck()
    answer = probe(spec, expect_version=installed)
    reported = answer.body.get("version")
    if answer.healthy:
        detail = f"CLMS {reported or installed} answers its health check"
    else:
        detail = (
            f"{answer.reason}. If CLMS runs elsewhere, set CLMS_APP_URL to its address."
        )
    return health.ComponentHealth("CLMS app", answer.healthy, detail, True)


@dataclass(frozen=True)
class StepView:
    """One row of a run's timeline."""

    name: str
    label: str
    state: str  # pending, running, done, failed, skipped
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def _recorded_steps(run: UpdateRun) -> list[dict[str, Any]]:
    """Step records the pipeline keeps on the run, if it keeps any.

    The pipeline stores them in ``UpdateRun.steps``: a list of records, each with
    ``name``, ``status`` (running, done, skipped, failed), ``started_at`` and
    ``finished_at``, in the order the steps ran.
    """
    raw = getattr(run, "steps", None)
    if callable(raw) or raw is None:
        return []
    if isinstance(raw, dict):
        raw = [
            {"name": k, **(v if isinstance(v, dict) else {})} for k, v in raw.items()
        ]
    return [r for r in raw if isinstance(r, dict) and r.get("name")]


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def step_timeline(run: UpdateRun) -> list[StepView]:
    """The run's steps in order with their state and, where recorded, their times."""
    # A rollback run goes through the same steps towards the older version; an
    # update that failed adds the rollback steps it recorded after its own.
    recorded = {r["name"]: r for r in _recorded_steps(run)}
    names = [step.name for step in UPDATE_STEPS]
    for name in recorded:
        if name not in names:
            names.append(name)
    if run.current_step and run.current_step not in names:
        names.append(run.current_step)
    current = names.index(run.current_step) if run.current_step in names else -1
    views = []
    for position, name in enumerate(names):
        record = recorded.get(name, {})
        state = str(record.get("status") or record.get("state") or "")
        if not state and recorded:
            # The pipeline records every step it starts: one without a record
            # has not started yet, or never will once the run has ended.
            state = "skipped" if run.is_terminal else "pending"
        elif not state:
            state = _inferred_state(run, position, current)
        views.append(
            StepView(
                name=name,
                label=STEP_LABELS.get(name, name.replace("_", " ").capitalize()),
                state=_normal_step_state(state),
                started_at=_parse_time(record.get("started_at")),
                finished_at=_parse_time(record.get("finished_at")),
            )
        )
    return views


def _normal_step_state(state: str) -> str:
    aliases = {
        "succeeded": "done",
        "ok": "done",
        "error": "failed",
        "started": "running",
    }
    return aliases.get(state, state)


def _inferred_state(run: UpdateRun, position: int, current: int) -> str:
    """Without step records: before the current step is done, after it pending."""
    if run.state == UpdateRun.State.SUCCEEDED:
        return "done"
    if current < 0 or position > current:
        return "pending"
    if position < current:
        return "done"
    if run.state in (UpdateRun.State.FAILED, UpdateRun.State.ROLLED_BACK):
        return "failed"
    if run.state == UpdateRun.State.ROLLING_BACK:
        return "failed"
    if run.state == UpdateRun.State.RUNNING:
        return "running"
    return "pending"


def run_duration(run: UpdateRun) -> timedelta | None:
    """How long the run took (or has taken so far)."""
    if run.started_at is None:
        return None
    end = run.finished_at or timezone.now()
    return end - run.started_at


# Why a run ended, in words for the History and run pages (the code stays in
# the API and the reports).
ERROR_WORDS = {
    "health_check_failed": "the new version's health check failed",
    "migration_failed": "the database migration failed",
    "container_crashed": "a container stopped while starting",
    "pull_failed": "the images could not be downloaded",
    "digest_mismatch": "an image was not the signed one",
    "verification_failed": "the release did not verify",
    "docker_unavailable": "the Docker engine did not answer",
    "backup_failed": "the backup failed",
    "no_backup": "there was no backup to go back to",
    "rollback_failed": "the rollback failed too",
    "policy_refused": "the release asks for something the school's policy refuses",
    "needs_input": "the release needs settings from you",
    "build_failed": "building the offline source failed",
    "compose_missing": "no Docker Compose was found",
    "cancelled": "cancelled",
    "withdrawn": "the vendor withdrew the release",
}


def error_words(code: str) -> str:
    """A run's error code as a phrase (an unknown code with its underscores as spaces)."""
    return ERROR_WORDS.get(code, code.replace("_", " "))


def format_seconds(seconds: float | None) -> str:
    """``75`` → ``1 min 15 s``: durations an admin reads at a glance."""
    if seconds is None:
        return "-"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


VERSION_RE = re.compile(r"^[0-9A-Za-z.+-]{1,64}$")


def filtered_runs(
    *,
    state: str = "",
    kind: str = "",
    version: str = "",
    date_from: Any = None,
    date_to: Any = None,
    sort: str = "newest",
) -> QuerySet[UpdateRun]:
    """The history, filtered and sorted as the history page asks."""
    runs = UpdateRun.objects.select_related("requested_by").annotate(
        duration=F("finished_at") - F("started_at")
    )
    if state:
        runs = runs.filter(state=state)
    if kind:
        runs = runs.filter(kind=kind)
    if version:
        runs = runs.filter(to_version__icontains=version) | runs.filter(
            from_version__icontains=version
        )
    zone = scheduling.school_zone()
    if date_from:
        start = timezone.make_aware(
            datetime.combine(date_from, datetime.min.time()), zone
        )
        runs = runs.filter(created_at__gte=start)
    if date_to:
        end = timezone.make_aware(
            datetime.combine(date_to, datetime.min.time()), zone
        ) + timedelta(days=1)
        runs = runs.filter(created_at__lt=end)
    return runs.order_by(*SORTS.get(sort, SORTS["newest"]))


@dataclass(frozen=True)
class SettingsOverview:
    """The settings releases ask this school for, and where each value stands."""

    states: list[SettingState]
    env_file: str
    override_file: str
    override_services: list[str]
    problem: str = ""

    @property
    def missing(self) -> list[SettingState]:
        return [s for s in self.states if s.missing]

    def changed_values(self, submitted: Mapping[str, str]) -> dict[str, str]:
        """What a submitted settings form changes: an empty secret keeps the secret,
        a field left as shown is not written again."""
        values = {}
        for state in self.states:
            given = submitted.get(state.setting.name)
            if given is None or (state.setting.secret and not given.strip()):
                continue
            if not state.setting.secret and given.strip() == state.shown:
                continue
            if not given.strip() and not state.is_set:
                continue
            values[state.setting.name] = given
        return values


def settings_overview() -> SettingsOverview:
    """What the settings card of the update manager shows (secrets never shown)."""
    declared = declared_settings()
    try:
        layout = compose_stack.locate_school_project()
    except (project.ProjectError, runtime.DockerUnavailable) as e:
        return SettingsOverview([], "", "", [], problem=str(e))
    env = project.read_env(layout.env_file)
    states = [
        SettingState(
            setting,
            bool(env.get(name)),
            "" if setting.secret else (env.get(name) or setting.default or ""),
        )
        for name, setting in sorted(declared.items())
    ]
    return SettingsOverview(
        states=states,
        env_file=str(layout.env_file),
        override_file=str(layout.override_file),
        override_services=project.override_services(layout),
    )


def left_volumes(state: AgentState) -> list[dict[str, Any]]:
    """Volumes of services a release removed, with their size (never deleted)."""
    if not state.left_volumes:
        return []
    try:
        sizes = compose_stack.project_volumes(
            runtime.docker_client(), str(settings.CLMS_COMPOSE_PROJECT)
        )
    except runtime.DockerUnavailable:
        sizes = {}
    return [
        {
            "name": name,
            "left_by": info.get("left_by", ""),
            "at": _parse_time(info.get("at")),
            "size": sizes.get(name) if sizes.get(name, -1) >= 0 else None,
        }
        for name, info in sorted(state.left_volumes.items())
    ]
