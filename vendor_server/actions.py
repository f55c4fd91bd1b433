"""Every change vendor staff (or the vendor server itself) make, with its rules and audit.

Releases: publish, enable/withdraw, pause/resume the rollout, change its
percentage, mark critical, re-sign, delete. Schools: create, rotate, revoke,
reinstate their API keys. Reports from schools, and the auto-pause they may
trigger. Each runs in one transaction with its index bump and audit entry;
the admin, the commands and the API only parse input and call these.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clms_updates import audit
from clms_updates.actions import ActionRefused, Actor
from clms_updates.manifest import join_signatures
from clms_updates.notify import notify
from vendor_server import indexing, publishing, reporting, rollouts, roots, schools
from vendor_server.models import Release, RootVersion, School, UpdateReport
from vendor_server.releases import installed_anywhere, sign_release

logger = logging.getLogger(__name__)


def publish_release(
    draft: publishing.ReleaseDraft, *, actor: Actor, held_back: bool = False
) -> Release:
    """Validate and publish ``draft``: signed manifest, bundle, index bump, audit.

    ``held_back`` publishes it disabled, in the same transaction: signed and
    stored, but in no school's index until staff enable it.
    Raises ``publishing.PublishError`` (an ``ActionRefused``) listing every
    problem; nothing is written then.
    """
    with transaction.atomic():
        release = publishing.publish(draft, published_by=actor.username or actor.via)
        if held_back:
            release.enabled = False
            release.save(update_fields=["enabled"])
        audit.record(
            "vendor.release.publish",
            actor=actor,
            target=str(release),
            version=release.version,
            channel=release.channel,
            critical=release.critical,
            rollout_percent=release.rollout_percent,
            held_back=held_back,
        )
    return release


def set_enabled(release_id: int, enabled: bool, *, actor: Actor) -> Release:
    """Enable a release, or withdraw it from every index (which also ends a pause)."""
    with transaction.atomic():
        release = _locked(release_id)
        if release.enabled == enabled:
            raise ActionRefused(
                f"{release.version} is already {'enabled' if enabled else 'disabled'}.",
                code="unchanged",
                conflict=True,
            )
        release.enabled = enabled
        if not enabled:
            release.paused_at = None
        release.save(update_fields=["enabled", "paused_at"])
        indexing.bump_sequence()
        audit.record(
            "vendor.release.enabled" if enabled else "vendor.release.disabled",
            actor=actor,
            target=str(release),
        )
    return release


def pause_release(release_id: int, *, actor: Actor, reason: str) -> Release:
    """Take the release out of every index until staff resume it."""
    with transaction.atomic():
        release = _locked(release_id)
        if release.is_paused:
            raise ActionRefused(
                f"{release.version} is already paused.", code="paused", conflict=True
            )
        if not release.enabled:
            raise ActionRefused(
                f"{release.version} is disabled; there is no rollout to pause.",
                code="disabled",
                conflict=True,
            )
        release.paused_at = timezone.now()
        release.pause_reason = reason
        release.save(update_fields=["paused_at", "pause_reason"])
        indexing.bump_sequence()
        audit.record(
            "vendor.release.paused", actor=actor, target=str(release), reason=reason
        )
    return release


def resume_release(release_id: int, *, actor: Actor) -> Release:
    """Put a paused release back into the indexes."""
    with transaction.atomic():
        release = _locked(release_id)
        if not release.is_paused:
            raise ActionRefused(
                f"{release.version} is not paused.", code="not_paused", conflict=True
            )
        release.paused_at = None
        release.pause_reason = ""
        release.save(update_fields=["paused_at", "pause_reason"])
        indexing.bump_sequence()
        audit.record("vendor.release.resumed", actor=actor, target=str(release))
    return release


def set_rollout_percent(release_id: int, percent: int, *, actor: Actor) -> Release:
    """Show the release to ``percent`` of the schools on its channel."""
    if not 0 <= percent <= 100:
        raise ActionRefused(
            "The rollout percentage must be from 0 to 100.",
            code="bad_percent",
            field="rollout_percent",
        )
    with transaction.atomic():
        release = _locked(release_id)
        release.rollout_percent = percent
        release.save(update_fields=["rollout_percent"])
        indexing.bump_sequence()
        audit.record(
            "vendor.release.rollout", actor=actor, target=str(release), percent=percent
        )
    return release


def mark_critical(release_id: int, force_after: datetime, *, actor: Actor) -> Release:
    """Make the release critical with a deadline; re-signs its manifest."""
    if force_after <= timezone.now():
        raise ActionRefused(
            f"The deadline {force_after:%Y-%m-%d %H:%M} UTC is in the past; give a "
            "future time.",
            code="in_the_past",
            field="force_after",
        )
    with transaction.atomic():
        release = _locked(release_id)
        release.critical = True
        release.force_after = force_after
        sign_release(release)
        release.save()
        indexing.bump_sequence()
        audit.record(
            "vendor.release.marked_critical",
            actor=actor,
            target=str(release),
            force_after=force_after.isoformat(),
        )
    return release


def resign_release(release_id: int, *, actor: Actor) -> Release:
    """Sign the release's manifest again (new expiry, or after a key rotation)."""
    with transaction.atomic():
        release = _locked(release_id)
        sign_release(release)
        release.save()
        indexing.bump_sequence()
        audit.record("vendor.release.resigned", actor=actor, target=str(release))
    return release


def attach_release_signature(
    release_id: int, signature: str, *, actor: Actor
) -> Release:
    """Store a release manager's signature over the manifest; list it once enough signed.

    The signature is made where the key lives (``sign_release sign``); the
    server only checks it is a release key's over the stored manifest.
    """
    with transaction.atomic():
        release = _locked(release_id)
        try:
            signers = roots.check_release_signature(release, signature)
        except roots.RootRefused as e:
            raise ActionRefused(str(e), code="bad_signature") from None
        release.manifest_signature = join_signatures(
            [release.manifest_signature, signature]
        )
        was_signed = release.release_signed
        release.release_signed = roots.signed_enough(release)
        release.save(update_fields=["manifest_signature", "release_signed"])
        if release.release_signed != was_signed:
            indexing.bump_sequence()
        have, needed = roots.release_signers(release)
        audit.record(
            "vendor.release.signature_attached",
            actor=actor,
            target=str(release),
            signers=signers,
            signatures=len(have),
            needed=needed,
        )
    return release


def publish_root(data: bytes, signature: str, *, actor: Actor) -> RootVersion:
    """Store the next root after checking both key sets signed it; re-count releases.

    Releases whose signatures no longer meet the new release threshold leave
    every index until release managers sign them (``sign_release``).
    """
    with transaction.atomic():
        RootVersion.objects.select_for_update().order_by("-version").first()
        try:
            new = roots.check_publishable(data, signature)
        except roots.RootRefused as e:
            raise ActionRefused(
                f"The root was not published: {e}", code="root_refused"
            ) from None
        row = RootVersion.objects.create(
            version=new.version,
            root_json=data.decode("utf-8"),
            signature=signature,
            published_by=actor.username or actor.via,
        )
        unlisted: list[str] = []
        for release in Release.objects.select_for_update():
            signed = roots.signed_enough(release, new)
            if signed != release.release_signed:
                release.release_signed = signed
                release.save(update_fields=["release_signed"])
                if not signed:
                    unlisted.append(str(release))
        indexing.bump_sequence()
        audit.record(
            "vendor.root.published",
            actor=actor,
            target=str(row),
            roles={
                name: {"keys": list(role.keys), "threshold": role.threshold}
                for name, role in new.roles.items()
            },
            awaiting_signatures=unlisted,
        )
    return row


def delete_release(release_id: int, *, actor: Actor) -> str:
    """Delete a release nobody has installed; refused otherwise (disable it instead)."""
    with transaction.atomic():
        release = _locked(release_id)
        if installed_anywhere(release):
            raise ActionRefused(
                f"{release.version} was installed by at least one school, so it cannot "
                "be deleted (schools and reports refer to it); disable it instead.",
                code="installed",
                conflict=True,
            )
        name = str(release)
        release.delete()
        indexing.bump_sequence()
        audit.record("vendor.release.deleted", actor=actor, target=name)
    return name


def _locked(release_id: int) -> Release:
    release = Release.objects.select_for_update().filter(pk=release_id).first()
    if release is None:
        raise ActionRefused(
            f"There is no release {release_id}.",
            code="unknown_release",
            field="release",
        )
    return release


# ---------------------------------------------------------------------------
# Schools
# ---------------------------------------------------------------------------


def create_school(
    name: str,
    *,
    actor: Actor,
    channel: str = "stable",
    time_zone: str = "UTC",
    api_key: str = "",
) -> tuple[School, str]:
    """Register a school; return it and its API key (the only time it is shown)."""
    if School.objects.filter(name=name).exists():
        raise ActionRefused(
            f"A school named {name!r} exists already; pick another name.",
            code="duplicate",
            field="name",
        )
    with transaction.atomic():
        school, key = schools.create_school(
            name, channel=channel, time_zone=time_zone, api_key=api_key
        )
        audit.record("vendor.school.create", actor=actor, target=school.name)
    return school, key


def save_school_changes(school: School, changed: list[str], *, actor: Actor) -> School:
    """Save a school edited by staff; a new channel changes its index, so the sequence grows.

    Agents refuse other bytes under a sequence they saw (equivocation), so a
    change of what a school sees always comes with a new sequence.
    """
    with transaction.atomic():
        school.save()
        if "channel" in changed:
            indexing.bump_sequence()
        audit.record(
            "vendor.school.changed",
            actor=actor,
            target=school.name,
            fields=sorted(changed),
        )
    schools.forget_key(school.api_key_hash)
    return school


def rotate_school_key(school_id: int, *, actor: Actor) -> str:
    """Give the school a new API key (shown once); the old one stops working."""
    school = _school(school_id)
    with transaction.atomic():
        key = schools.rotate_key(school)
        audit.record("vendor.school.rotate_key", actor=actor, target=school.name)
    return key


def revoke_school_key(school_id: int, *, actor: Actor) -> School:
    """Revoke the school's key: its agent gets 403 until the key is rotated."""
    school = _school(school_id)
    with transaction.atomic():
        schools.revoke(school)
        audit.record("vendor.school.revoke", actor=actor, target=school.name)
    return school


def reinstate_school_key(school_id: int, *, actor: Actor) -> School:
    """Undo a revocation (the same key works again)."""
    school = _school(school_id)
    with transaction.atomic():
        schools.reinstate(school)
        audit.record("vendor.school.reinstate", actor=actor, target=school.name)
    return school


def _school(school_id: int) -> School:
    school = School.objects.filter(pk=school_id).first()
    if school is None:
        raise ActionRefused(
            f"There is no school {school_id}.", code="unknown_school", field="school"
        )
    return school


# ---------------------------------------------------------------------------
# Reports from schools, and the auto-pause
# ---------------------------------------------------------------------------


def record_report(school_id: int, data: dict[str, Any]) -> UpdateReport:
    """Store a school's report of a run; failures may pause the release's rollout."""
    report, _created = reporting.record_report(school_id, data)
    if (
        report.release_id is not None
        and report.counted
        and not reporting.succeeded(report)
    ):
        pause_if_failing(report.release_id)
    return report


def pause_if_failing(release_id: int) -> bool:
    """Pause the release's rollout when its failure rate passes the threshold.

    The system acts; the row lock makes two reports arriving together pause
    (and tell staff) once. A critical release is never paused by reports
    (pausing it would keep a security fix from every school): staff are told
    once instead, and decide.
    """
    with transaction.atomic():
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.is_paused or not release.enabled:
            return False
        figures = rollouts.failure_figures(release)
        if not rollouts.should_pause(figures):
            return False
        share = (
            f"{figures.failed} of {figures.total} schools that reported it failed "
            f"or rolled back ({figures.failure_percent:.0f}%, threshold "
            f"{settings.VENDOR_PAUSE_FAILURE_PERCENT}% of at least "
            f"{settings.VENDOR_PAUSE_MIN_REPORTS} schools)."
        )
        if release.critical:
            if release.failure_alerted_at is not None:
                return False
            Release.objects.filter(pk=release.pk).update(
                failure_alerted_at=timezone.now()
            )
            reason = (
                f"Not paused, because {release.version} is critical: {share} "
                "Decide in the admin whether to pause or disable it."
            )
            audit.record(
                "vendor.release.failing",
                actor=Actor.system(),
                target=f"release {release.version}",
                reason=reason,
            )
            transaction.on_commit(
                lambda: _tell_staff(release, reason, "critical_release_failing")
            )
            return False
        reason = f"Paused automatically: {share}"
        pause_release(release.pk, actor=Actor.system(), reason=reason)
        transaction.on_commit(lambda: _tell_staff(release, reason))
    return True


def tell_silent_schools(*, now: datetime | None = None) -> int:
    """Raise "schools_silent" for the schools not seen for VENDOR_SILENT_SCHOOL_DAYS.

    The occurrence is the set of schools: the same silent schools are not
    told again each day; one more (or one back) is a new occurrence.
    """
    now = now or timezone.now()
    days = settings.VENDOR_SILENT_SCHOOL_DAYS
    silent = list(
        School.objects.filter(
            revoked_at__isnull=True, last_seen__lt=now - timedelta(days=days)
        )
        .order_by("last_seen")
        .values_list("pk", "name", "last_seen")
    )
    if not silent:
        return 0
    key = hashlib.sha256(",".join(str(pk) for pk, _, _ in sorted(silent)).encode())
    notify(
        "schools_silent",
        {"schools": silent[:50], "count": len(silent), "days": days},
        key=f"silent {key.hexdigest()}",
        email=False,
    )
    return len(silent)


def _tell_staff(release: Release, reason: str, event: str = "rollout_paused") -> None:
    if not settings.VENDOR_STAFF_EMAILS:
        logger.warning("%s: %s; no VENDOR_STAFF_EMAILS to e-mail", release, reason)
    notify(
        event,
        {"release": release, "reason": reason, "paused_at": timezone.now()},
        key=f"{release.pk}:{release.paused_at or release.failure_alerted_at}",
        recipients=settings.VENDOR_STAFF_EMAILS,
    )
