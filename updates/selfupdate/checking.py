"""Check for releases of the agent itself: the agent product's own signed index.

The same trust as a CLMS check (``updates.checking``): the index and the
manifest signed by a pinned vendor key, the index fresh and never older than
one seen before (its own sequence, ``AgentState.agent_index_sequence``), the
manifest the one the index lists, both of the agent's product
(``UPDATES_AGENT_PRODUCT``). The newest release above the running agent on
``UPDATES_AGENT_CHANNEL`` is stored as an ``AgentRelease``; with
``UPDATES_AGENT_PIN`` only that version is taken. An agent release the index
no longer lists is withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from clms_updates.manifest import (
    check_index_freshness,
    parse_index,
    parse_manifest,
    parse_version,
)
from updates.checking import choose_release, reached, remember_index
from updates.models import AgentRelease, AgentState
from updates.sources import Source
from updates.sources.vendor import VendorSource
from updates.trust import (
    INDEX,
    RELEASE,
    CheckRefused,
    ensure_vendor_keys,
    follow_roots,
    verify,
)


@dataclass(frozen=True)
class AgentCheck:
    """What the check found: the release stored (or None) and why."""

    release: AgentRelease | None
    note: str


def check_agent_releases(
    source: Source | None = None, *, now: datetime | None = None
) -> AgentCheck:
    """Fetch and verify the agent product's index; store the release to offer.

    Raises ``CheckRefused`` / ``ManifestError`` / ``SourceError`` like a CLMS
    check; nothing is stored then.
    """
    now = now or timezone.now()
    product = settings.UPDATES_AGENT_PRODUCT
    source = source or VendorSource.from_settings(product=product)
    state = AgentState.load()
    ensure_vendor_keys(source)
    follow_roots(source)
    document = source.fetch_index()
    verify(document.data, document.signature, "agent index", role=INDEX)
    index = parse_index(document.data)
    if index.product != product:
        raise CheckRefused(
            f"the agent's index is for product {index.product!r}, not {product!r}; "
            "documents of another product are never used for the agent"
        )
    check_index_freshness(
        index, highest_sequence_seen=state.agent_index_sequence, now=now
    )
    remember_index(state, f"agent:{source.name}", index, document.data)
    index = reached(index, settings.UPDATES_AGENT_CHANNEL)
    AgentState.objects.filter(
        pk=state.pk, agent_index_sequence__lt=index.sequence
    ).update(agent_index_sequence=index.sequence)
    listed = {entry.version for entry in index.releases}
    AgentRelease.objects.filter(withdrawn_at__isnull=True).exclude(
        version__in=listed
    ).update(withdrawn_at=now)

    running = settings.AGENT_VERSION
    choice = choose_release(index, running, settings.UPDATES_AGENT_CHANNEL)
    entry = choice.entry
    pin = settings.UPDATES_AGENT_PIN
    if pin:
        entry = next((e for e in index.releases if e.version == pin), None)
        if entry is None or parse_version(pin) <= parse_version(running):
            return AgentCheck(
                None,
                f"the agent is pinned to {pin} (UPDATES_AGENT_PIN); "
                + (
                    "it runs it already"
                    if pin == running
                    else f"{pin} is not offered to this school"
                ),
            )
    if entry is None:
        return AgentCheck(None, f"CLMS Updates {running} is the newest agent")
    manifest_doc = source.fetch_manifest(entry.version)
    signer = verify(
        manifest_doc.data,
        manifest_doc.signature,
        f"agent manifest {entry.version}",
        role=RELEASE,
    )
    manifest = parse_manifest(manifest_doc.data)
    entry.check_matches(manifest, manifest_doc.data)
    if manifest.product != product:
        raise CheckRefused(
            f"the manifest of agent {entry.version} is for product "
            f"{manifest.product!r}, not the agent's {product!r}"
        )
    if now >= manifest.expires:
        raise CheckRefused(
            f"the manifest of agent {entry.version} expired at "
            f"{manifest.expires:%Y-%m-%d %H:%M} UTC; ask the vendor to re-sign it"
        )
    release, _ = AgentRelease.objects.update_or_create(
        version=entry.version,
        defaults={
            "channel": manifest.channel,
            "critical": manifest.critical,
            "force_after": manifest.force_after,
            "changelog": manifest.changelog,
            "released_at": manifest.released_at,
            "manifest_text": manifest_doc.data.decode("utf-8"),
            "signature": manifest_doc.signature,
            "signer_fingerprint": signer,
            "index_sequence": index.sequence,
            "verified_at": now,
            "withdrawn_at": None,
        },
    )
    return AgentCheck(release, f"CLMS Updates {release.version} is available")


def offered() -> AgentRelease | None:
    """The newest verified agent release above the running agent, if any."""
    running = parse_version(settings.AGENT_VERSION)
    candidates = [
        r
        for r in AgentRelease.objects.filter(withdrawn_at__isnull=True)
        if parse_version(r.version) > running
        and (not settings.UPDATES_AGENT_PIN or r.version == settings.UPDATES_AGENT_PIN)
    ]
    return max(candidates, key=lambda r: parse_version(r.version), default=None)
