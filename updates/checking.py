"""Check for updates: fetch, verify, choose, store. The trust model lives here.

One check, in order, for the first source that answers:

1. fetch the signed index; verify its signature against the pinned vendor keys;
2. refuse a replayed (lower sequence) or expired index;
3. pick the newest eligible release above the installed version (SemVer
   precedence, the configured channel, ``min_version``: an installation too old
   for the newest release is offered the newest stepping stone it can take);
4. fetch that release's manifest, verify its signature, check it is the one the
   index lists (sha256, version, channel, deadline);
5. store it as an ``AvailableRelease`` and tell the admins once.

Any refusal stops the check with nothing stored as available, and the reason is
recorded on the ``UpdateCheck``. Sources that do not answer are skipped; when
none answers the agent is marked offline and keeps what it already knows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import semver
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clms_updates.manifest import (
    IndexEntry,
    ManifestError,
    ReleaseIndex,
    check_index_freshness,
    check_not_equivocating,
    parse_index,
    parse_manifest,
    parse_version,
    school_token,
    sha256_hex,
    visible_part,
)
from clms_updates.notify import notify
from updates.models import AgentState, AvailableRelease, UpdateCheck
from updates.releases import channels_for, found_note, notify_admins_once
from updates.sources import (
    Source,
    SourceError,
    SourceRateLimited,
    SourceRefused,
    SourceUnavailable,
    configured_sources,
)
from updates.trust import (
    INDEX,
    RELEASE,
    CheckRefused,
    ensure_vendor_keys,
    follow_roots,
    verify,
)
from updates.withdrawal import apply_index

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    """The release the agent would offer, and why (for the admin)."""

    entry: IndexEntry | None
    note: str


# ---------------------------------------------------------------------------
# Choosing a release
# ---------------------------------------------------------------------------


def choose_release(index: ReleaseIndex, installed: str, channel: str) -> Choice:
    """The newest release this installation may move to next, by SemVer precedence.

    A release whose ``min_version`` is above the installed version cannot be
    reached directly; the newest release that *can* (the stepping stone) is
    offered first, and the next check offers the rest.
    """
    current = parse_version(installed, field_name="installed version")
    allowed = channels_for(channel)
    newer = [e for e in index.releases if e.channel in allowed and e.semver > current]
    if not newer:
        return Choice(None, f"CLMS {installed} is up to date on the {channel} channel")
    reachable = [
        e
        for e in newer
        if e.min_version is None or current >= parse_version(e.min_version)
    ]
    newest = max(newer, key=lambda e: e.semver)
    if not reachable:
        return Choice(
            None,
            f"CLMS {newest.version} needs at least {newest.min_version} and no release "
            f"leads there from {installed}; ask the vendor for a stepping-stone release",
        )
    best = max(reachable, key=lambda e: e.semver)
    if best.version != newest.version:
        return Choice(
            best,
            f"{best.version} is offered first: {newest.version} needs at least "
            f"{newest.min_version}",
        )
    return Choice(best, f"{best.version} is available")


def sort_versions(versions: list[str]) -> list[str]:
    """Versions in SemVer 2.0 precedence order (build metadata ignored)."""
    return sorted(versions, key=semver.Version.parse)


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------


def run_check(
    *,
    trigger: str = UpdateCheck.Trigger.MANUAL,
    user: Any = None,
    sources: list[Source] | None = None,
    now: datetime | None = None,
) -> UpdateCheck:
    """Check every configured source in order; record and return the ``UpdateCheck``.

    The first source that answers decides the outcome (ok or refused). Sources
    that do not answer are skipped; if none answers the check is ``offline``.
    A source that answered 429 is up but busy: the next one is tried, and if
    none decides, the check is an ``error`` saying when to try again (never
    ``offline``). Periodic checks do not ask such a source before its
    Retry-After has passed.
    """
    started = now or timezone.now()
    state = AgentState.load()
    sources = configured_sources() if sources is None else sources
    check = UpdateCheck(
        started_at=started,
        trigger=trigger,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
    )
    unreachable: list[str] = []
    slowed: list[str] = []
    contacted = False
    if not sources:
        check.outcome = UpdateCheck.Outcome.ERROR
        check.reason = (
            "no update source is configured: UPDATES_SOURCES names none that is "
            "available (set UPDATES_VENDOR_URL, or add a mirror or offline folder)"
        )
    for source in sources:
        check.source = source.name
        wait = slow_down_remaining(state, source.name, now=started)
        if wait and trigger == UpdateCheck.Trigger.PERIODIC:
            slowed.append(
                f"{source.name}: skipped, the {source.name} server asked us to slow "
                f"down; next try after {wait} s"
            )
            continue
        contacted = True
        try:
            _check_source(source, state, check, now=started)
        except SourceRateLimited as e:
            _slow_down(state, source.name, e.retry_after_seconds, now=started)
            slowed.append(f"{source.name}: {e}")
            continue
        except SourceUnavailable as e:
            unreachable.append(f"{source.name}: {e}")
            continue
        except (CheckRefused, SourceRefused, ManifestError) as e:
            check.outcome = UpdateCheck.Outcome.REFUSED
            check.reason = f"{source.name}: {e}"
        except SourceError as e:
            check.outcome = UpdateCheck.Outcome.ERROR
            check.reason = f"{source.name}: {e}"
        except Exception as e:  # a bug or a broken gpg: recorded, never half-stored
            logger.exception("Update check against %s failed unexpectedly", source.name)
            check.outcome = UpdateCheck.Outcome.ERROR
            check.reason = (
                f"{source.name}: unexpected error ({type(e).__name__}: {e}); nothing "
                "was stored. See the agent's log."
            )
        break
    else:
        if slowed:
            # A source answered (429): the agent is online, the check just waits.
            check.outcome = UpdateCheck.Outcome.ERROR
            check.reason = "; ".join(slowed + unreachable)
        elif sources:
            check.outcome = UpdateCheck.Outcome.OFFLINE
            check.source = ""
            check.reason = "no update source answered: " + "; ".join(unreachable)
    _finish(check, state, now=started, contacted=contacted or not sources)
    return check


def slow_down_remaining(state: AgentState, source_name: str, *, now: datetime) -> int:
    """Seconds left before ``source_name`` may be asked again (0: ask now)."""
    until = (state.slow_down_until or {}).get(source_name)
    if not until:
        return 0
    try:
        left = (datetime.fromisoformat(until) - now).total_seconds()
    except (TypeError, ValueError):
        return 0
    return max(0, int(left + 0.999))


def _slow_down(
    state: AgentState, source_name: str, seconds: int, *, now: datetime
) -> None:
    """Remember that ``source_name`` asked not to be asked for ``seconds``."""
    until = dict(state.slow_down_until or {})
    until[source_name] = (now + timedelta(seconds=seconds)).isoformat()
    state.slow_down_until = until


def _check_source(
    source: Source, state: AgentState, check: UpdateCheck, *, now: datetime
) -> None:
    """Steps 1-5 against one source; fills ``check`` or raises why not."""
    ensure_vendor_keys(source)
    follow_roots(source)
    document = source.fetch_index()
    verify(document.data, document.signature, "index", role=INDEX)
    index = parse_index(document.data)
    check.index_sequence = index.sequence
    if index.product != settings.UPDATES_PRODUCT:
        raise CheckRefused(
            f"the index is for product {index.product!r}, not {settings.UPDATES_PRODUCT!r} "
            "(UPDATES_PRODUCT); documents of another product are never installed"
        )
    check_index_freshness(index, highest_sequence_seen=state.highest_sequence, now=now)
    remember_index(state, source.name, index, document.data)
    index = reached(index, settings.UPDATES_CHANNEL)
    # Only a verified, fresh index moves the replay guard forward, and only it
    # may withdraw releases it no longer lists.
    AgentState.objects.filter(pk=state.pk, highest_sequence__lt=index.sequence).update(
        highest_sequence=index.sequence
    )
    state.highest_sequence = max(state.highest_sequence, index.sequence)
    apply_index(index, now=now)

    choice = choose_release(index, state.installed_version, settings.UPDATES_CHANNEL)
    check.outcome = UpdateCheck.Outcome.OK
    check.reason = choice.note
    if choice.entry is None:
        return
    entry = choice.entry
    known = AvailableRelease.objects.filter(version=entry.version).first()
    manifest_doc = source.fetch_manifest(entry.version)
    signer = verify(
        manifest_doc.data,
        manifest_doc.signature,
        f"manifest {entry.version}",
        role=RELEASE,
    )
    manifest = parse_manifest(manifest_doc.data)
    entry.check_matches(manifest, manifest_doc.data)
    if manifest.product != index.product:
        raise CheckRefused(
            f"manifest of {entry.version} is for product {manifest.product!r} but the "
            f"index is for {index.product!r}; releases of two products are never mixed"
        )
    if now >= manifest.expires:
        raise CheckRefused(
            f"manifest of {entry.version} expired at {manifest.expires:%Y-%m-%d %H:%M} "
            "UTC: the source serves stale metadata; ask the vendor to re-sign it"
        )

    fields = {
        "channel": manifest.channel,
        "critical": manifest.critical,
        "force_after": manifest.force_after,
        "min_version": manifest.min_version or "",
        "changelog": manifest.changelog,
        "released_at": manifest.released_at,
        "manifest_text": manifest_doc.data.decode("utf-8"),
        "signature": manifest_doc.signature,
        "signer_fingerprint": signer,
        "source": source.name,
        "index_sequence": index.sequence,
        "verified_at": now,
        "withdrawn_at": None,
    }
    if known is not None and known.manifest_text != fields["manifest_text"]:
        logger.warning(
            "The signed manifest of %s changed; storing the new one", entry.version
        )
    release, _ = AvailableRelease.objects.update_or_create(
        version=entry.version, defaults=fields
    )
    check.found_version = release.version
    check.reason = found_note(release, check.reason)
    notify_admins_once(release)


def reached(index: ReleaseIndex, channel: str) -> ReleaseIndex:
    """Of a channel index, the releases that reached this school; refuse another channel.

    A format 1 index is this school's own view already and is kept whole.
    """
    if index.channel is not None and index.channel != channel:
        raise CheckRefused(
            f"the index is for the {index.channel} channel; this agent follows "
            f"{channel}: another channel's index is never used"
        )
    return visible_part(index, rollout_token())


def rollout_token() -> str:
    """This school's place in staged rollouts: the token of its vendor API key
    (the vendor computes the same), else of its mirror token."""
    return school_token(
        settings.UPDATES_VENDOR_API_KEY or settings.UPDATES_MIRROR_TOKEN or ""
    )


def remember_index(
    state: AgentState, key: str, index: ReleaseIndex, data: bytes
) -> None:
    """Refuse equivocation by ``key``'s source, else remember this index's bytes."""
    digest = sha256_hex(data)
    seen = dict(state.index_seen or {})
    check_not_equivocating(index, digest, seen=seen.get(key), source=key)
    seen[key] = {"sequence": index.sequence, "sha256": digest}
    state.index_seen = seen
    AgentState.objects.filter(pk=state.pk).update(index_seen=seen)


def _finish(
    check: UpdateCheck, state: AgentState, *, now: datetime, contacted: bool = True
) -> None:
    """Record the check and the agent's online state in one transaction.

    A check that asked no source (all were told to slow down) leaves the
    online state as it was.
    """
    finished = timezone.now()
    check.finished_at = finished
    slow_down_until = {
        name: until
        for name, until in (state.slow_down_until or {}).items()
        if slow_down_remaining(state, name, now=now)
    }
    with transaction.atomic():
        check.save()
        state.refresh_from_db()
        state.slow_down_until = slow_down_until
        if not contacted:
            state.save(update_fields=["slow_down_until"])
            return
        state.last_check_at = now
        if check.outcome == UpdateCheck.Outcome.OFFLINE:
            if not state.offline:
                state.offline_since = now
                since = now
                transaction.on_commit(
                    lambda: notify(
                        "agent_offline",
                        {"since": since, "reason": check.reason},
                        key=f"offline {since.isoformat()}",
                        email=False,
                    )
                )
            state.offline = True
            state.offline_reason = check.reason
        else:
            state.offline = False
            state.offline_reason = ""
            state.offline_since = None
            if check.outcome == UpdateCheck.Outcome.OK:
                state.last_good_check_at = now
        state.save()
    if check.outcome != UpdateCheck.Outcome.OK:
        logger.warning("Update check %s: %s", check.outcome, check.reason)
