"""The rules against replayed and frozen metadata, the same for every source.

- Replay: an index whose ``sequence`` is lower than the highest one the agent has
  seen is refused, so an attacker cannot serve an old index to hide a release.
  The same sequence again is accepted (polling the unchanged index).
- Freeze: an index past its ``expires`` is refused, so an attacker cannot keep
  serving a stale index forever.
- Equivocation: the vendor never changes an index without a new sequence, so
  a source that serves other bytes under the sequence it served before (one
  school handed another's view, say) is refused (``check_not_equivocating``).
- Offline bundles: a bundle travels by hand and may sit on a USB stick for weeks,
  so its manifest's ``expires`` is not enforced as strictly. A bundle is accepted
  until ``expires`` plus a grace period (``UPDATES_OFFLINE_GRACE_DAYS``, default
  90 days) and never for a version lower than the one installed; replay of an
  older bundle is impossible because the agent never moves to a lower version.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from clms_updates.manifest.schema import (
    ManifestError,
    ReleaseIndex,
    ReleaseManifest,
    format_time,
)


class ReplayError(ManifestError):
    """The index is older than one already seen (possible rollback or replay attack)."""


class ExpiredError(ManifestError):
    """The metadata is past its expiry (possible freeze attack, or a stale mirror)."""


def check_index_freshness(
    index: ReleaseIndex, *, highest_sequence_seen: int, now: datetime
) -> None:
    """Refuse a replayed or expired index with an error that says which and why."""
    if index.sequence < highest_sequence_seen:
        raise ReplayError(
            f"index sequence {index.sequence} is lower than {highest_sequence_seen}, the highest "
            "this agent has seen: an old index is being replayed (a rollback attack, or a "
            "mirror that is out of date); it was refused"
        )
    if now >= index.expires:
        raise ExpiredError(
            f"index expired at {format_time(index.expires)} (now {format_time(now)}): the "
            "source serves stale metadata (a freeze attack, or a vendor server that stopped "
            "re-signing); it was refused"
        )


class EquivocationError(ManifestError):
    """The same sequence came with other bytes: someone shows this school another view."""


def check_not_equivocating(
    index: ReleaseIndex, digest: str, *, seen: dict[str, object] | None, source: str
) -> None:
    """Refuse an index whose sequence ``source`` already served with other bytes."""
    if not seen or seen.get("sequence") != index.sequence:
        return
    if seen.get("sha256") != digest:
        raise EquivocationError(
            f"{source} served another index under sequence {index.sequence}, which "
            "it served before with other contents (equivocation): the vendor never "
            "changes an index without a new sequence, so something between (a "
            "mirror, a proxy, a stolen key) is showing this school another view. It "
            "was refused; tell the vendor"
        )


def check_offline_manifest_fresh(
    manifest: ReleaseManifest, *, now: datetime, grace: timedelta
) -> None:
    """Apply the offline expiry rule (``expires`` plus ``grace``) to a bundle's manifest."""
    limit = manifest.expires + grace
    if now >= limit:
        raise ExpiredError(
            f"bundle for {manifest.version} expired at {format_time(manifest.expires)} and its "
            f"offline grace ended at {format_time(limit)}; ask the vendor for a fresh bundle"
        )
