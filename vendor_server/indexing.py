"""The signed release index: its sequence, its expiry, and what each school sees.

1. Every change that alters what any school sees calls ``bump_sequence`` inside
   the change's transaction; the new sequence is published to the cache on
   commit, so pollers pick it up with one cache read.
2. An agent that reads format 2 gets the *channel index*
   (``signed_channel_index``): every listed release of its product and channel
   with its rollout percent, the same bytes for every school of the channel;
   the agent keeps what reached it by the shared rule. So a mirror or proxy
   cannot hand one school another school's view, and a sequence needs one
   signature per product and channel, however many schools there are.
3. An older agent (format 1) gets the releases visible to it
   (``rollouts.is_visible``) in a document of its own view: schools with the
   same visible set share it, signed once per (sequence, set).

Every document is kept in the process, the cache and ``SignedIndex``, so
polling never calls gpg.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from clms_updates.manifest import IndexEntry, ReleaseIndex, parse_manifest
from vendor_server import keys
from vendor_server.models import IndexState, Release, SignedIndex, new_epoch
from vendor_server.rollouts import ListedRelease, is_visible, on_channel

# Every cache key carries the database's epoch (``IndexState.epoch``).
SEQUENCE_CACHE_KEY = "vendor:index:{epoch}:sequence"
SIGNED_CACHE_PREFIX = "vendor:index:{epoch}:signed:"
LISTED_CACHE_PREFIX = "vendor:index:{epoch}:listed:"
_local_epoch: list[str] = []

# Other processes see a new sequence within this many seconds.
LOCAL_SEQUENCE_TTL = 1.0
_local_sequence: list = [0, 0.0]
_local_lock = threading.Lock()
_local: dict[tuple[int, str], SignedDocument] = {}
_local_listed: dict[tuple[int, str], tuple[ListedRelease, ...]] = {}


@dataclass(frozen=True)
class SignedDocument:
    """Canonical bytes (as text), their detached signature and an ETag."""

    text: str
    signature: str
    etag: str


def index_state() -> IndexState:
    """The single IndexState row (created at sequence 1 on first use)."""
    state, _ = IndexState.objects.get_or_create(
        pk=1,
        defaults={"expires": timezone.now() + _ttl()},
    )
    return state


def _ttl() -> timedelta:
    return timedelta(days=settings.VENDOR_INDEX_TTL_DAYS)


def _epoch() -> str:
    """This database's epoch, read once per process."""
    if not _local_epoch:
        _local_epoch.append(index_state().epoch)
    return _local_epoch[0]


def _key(template: str) -> str:
    return template.format(epoch=_epoch())


def bump_sequence(*, now: datetime | None = None) -> int:
    """Grow the sequence by one and restart the expiry; call inside the change's transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        index_state()
        state = IndexState.objects.select_for_update().get(pk=1)
        state.sequence += 1
        state.generated_at = now
        state.expires = now + _ttl()
        state.save()
        sequence = state.sequence
    # Readers fall back to the database until the commit publishes the new value.
    key = _key(SEQUENCE_CACHE_KEY)
    cache.delete(key)
    _local_sequence[:] = [0, 0.0]
    transaction.on_commit(lambda: cache.set(key, sequence, None))
    return sequence


def resume_after_restore(*, at_least: int = 0) -> int:
    """After the database was restored from a backup: a sequence above any served.

    Agents refuse a lower sequence than they saw, and the restored row may be
    behind what the server served since the backup. The new sequence is above
    the restored one, the one the cache still holds, and ``at_least`` (for when
    the cache was lost too: the highest sequence an agent shows); the epoch is
    new, so no document signed before the restore is served again.
    """
    with transaction.atomic():
        index_state()
        state = IndexState.objects.select_for_update().get(pk=1)
        cached = cache.get(SEQUENCE_CACHE_KEY.format(epoch=state.epoch)) or 0
        state.sequence = max(state.sequence, int(cached), at_least) + 1
        state.epoch = new_epoch()
        now = timezone.now()
        state.generated_at = now
        state.expires = now + _ttl()
        state.save()
    forget_local_caches()
    return state.sequence


def current_sequence() -> int:
    """The sequence: this process's copy (a second old at most), the cache, or the DB."""
    now = time.monotonic()
    if _local_sequence[1] > now:
        return _local_sequence[0]
    key = _key(SEQUENCE_CACHE_KEY)
    sequence = cache.get(key)
    if sequence is None:
        sequence = index_state().sequence
        cache.set(key, sequence, None)
    _local_sequence[:] = [int(sequence), now + LOCAL_SEQUENCE_TTL]
    return int(sequence)


def refresh_if_expiring(*, now: datetime | None = None) -> bool:
    """Re-sign (bump) the index when it expires within the configured margin."""
    now = now or timezone.now()
    margin = timedelta(hours=settings.VENDOR_INDEX_RESIGN_BEFORE_HOURS)
    if index_state().expires - now > margin:
        return False
    bump_sequence(now=now)
    SignedIndex.objects.filter(created_at__lt=now - timedelta(days=1)).delete()
    return True


def products() -> tuple[str, ...]:
    """The products this vendor publishes: CLMS, and the agent itself."""
    return (settings.VENDOR_PRODUCT, settings.VENDOR_AGENT_PRODUCT)


def listed_releases(
    sequence: int, product: str | None = None
) -> tuple[ListedRelease, ...]:
    """The releases of ``product`` that may be listed at ``sequence`` (enabled, not paused)."""
    product = product or settings.VENDOR_PRODUCT
    found = _local_listed.get((sequence, product))
    if found is not None:
        return found
    key = f"{_key(LISTED_CACHE_PREFIX)}{sequence}:{product}"
    cached = cache.get(key)
    if cached is None:
        cached = [
            (r.id, r.channel, r.critical, r.rollout_percent, r.product, r.version)
            for r in Release.objects.listed()
            .of(product)
            .only("id", "channel", "critical", "rollout_percent", "product", "version")
        ]
        cache.set(key, cached, 3600)
    listed = tuple(ListedRelease(*item) for item in cached)
    with _local_lock:
        if len(_local_listed) > 8:
            _local_listed.clear()
        _local_listed[(sequence, product)] = listed
    return listed


def visible_release_ids(
    school_token: str, channel: str, sequence: int, product: str | None = None
) -> list[int]:
    """Ids of the releases of ``product`` the school may see at ``sequence``, sorted."""
    return sorted(
        r.id
        for r in listed_releases(sequence, product)
        if is_visible(r, school_token, channel)
    )


def signed_channel_index(channel: str, product: str | None = None) -> SignedDocument:
    """The format 2 index of ``product`` for every school on ``channel``."""
    product = product or settings.VENDOR_PRODUCT
    sequence = current_sequence()
    ids = sorted(
        r.id
        for r in listed_releases(sequence, product)
        if on_channel(r.channel, channel)
    )
    key = hashlib.sha256(f"channel:{product}:{channel}".encode()).hexdigest()
    return _document(sequence, key, ids, product, channel=channel)


def signed_index_for(
    school_token: str, channel: str, product: str | None = None
) -> SignedDocument:
    """The format 1 index of ``product`` for this school, signed once per visible set."""
    product = product or settings.VENDOR_PRODUCT
    sequence = current_sequence()
    ids = visible_release_ids(school_token, channel, sequence, product)
    release_key = hashlib.sha256(
        f"{product}:{','.join(map(str, ids))}".encode()
    ).hexdigest()
    return _document(sequence, release_key, ids, product)


def _document(
    sequence: int,
    release_key: str,
    ids: list[int],
    product: str,
    *,
    channel: str | None = None,
) -> SignedDocument:
    """The signed document for ``release_key`` at ``sequence``: signed once, then kept."""
    found = _local.get((sequence, release_key))
    if found is not None:
        return found
    cache_key = f"{_key(SIGNED_CACHE_PREFIX)}{sequence}:{release_key}"
    cached = cache.get(cache_key)
    if cached is None:
        row = SignedIndex.objects.filter(
            sequence=sequence, release_key=release_key
        ).first()
        if row is None:
            row = _sign_index(sequence, release_key, ids, product, channel)
        cached = (row.index_json, row.signature)
        cache.set(cache_key, cached, 86400)
    text, signature = cached
    document = SignedDocument(
        text=text, signature=signature, etag=f'"i{sequence}-{release_key[:16]}"'
    )
    with _local_lock:
        if len(_local) > 256:
            _local.clear()
        _local[(sequence, release_key)] = document
    return document


def _sign_index(
    sequence: int,
    release_key: str,
    ids: list[int],
    product: str,
    channel: str | None = None,
) -> SignedIndex:
    state = index_state()
    releases = Release.objects.filter(id__in=ids)
    entries = sorted(
        (
            replace(
                IndexEntry.for_manifest(parse_manifest(r.manifest_bytes)),
                rollout_percent=r.rollout_percent if channel else None,
            )
            for r in releases
        ),
        key=lambda e: e.semver,
    )
    index = ReleaseIndex(
        product=product,
        # The state row may already be newer than the cached sequence; sign what
        # the caller asked for so the ETag and the bytes agree.
        sequence=sequence,
        generated_at=state.generated_at,
        expires=state.expires,
        releases=tuple(entries),
        channel=channel,
    )
    data = index.to_bytes()
    signature = keys.sign(data)
    try:
        with transaction.atomic():
            return SignedIndex.objects.create(
                sequence=sequence,
                release_key=release_key,
                index_json=data.decode("utf-8"),
                signature=signature,
            )
    except IntegrityError:
        # Another process signed the same set first: serve theirs.
        return SignedIndex.objects.get(sequence=sequence, release_key=release_key)


def forget_local_caches() -> None:
    """Drop this process's copies (tests; they are keyed by sequence anyway)."""
    with _local_lock:
        _local.clear()
        _local_listed.clear()
        _local_sequence[:] = [0, 0.0]
        _local_epoch.clear()
