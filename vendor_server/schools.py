"""Schools and their API keys: create, rotate, revoke, and the cached key lookup."""

from __future__ import annotations

import time
from typing import NamedTuple

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from vendor_server.models import School, hash_api_key, new_api_key

KEY_CACHE_PREFIX = "vendor:apikey2:"
KEY_CACHE_TTL = 300
# Each process also keeps lookups this long: a revoked or rotated key may work
# for up to this many seconds in other server processes.
LOCAL_KEY_TTL = 10.0
_local_keys: dict[str, tuple[float, KeyOwner | None]] = {}


class KeyOwner(NamedTuple):
    """Who an API key belongs to, as the poll path needs it (cached)."""

    school_id: int
    channel: str
    revoked: bool
    # The sha256 of the key: the school's place in staged rollouts
    # (``clms_updates.manifest.rollout``), which its agent computes too.
    token: str


def create_school(
    name: str, *, channel: str = "stable", time_zone: str = "UTC", api_key: str = ""
) -> tuple[School, str]:
    """Create a school; return it and its API key (the only time the key is known)."""
    key = api_key or new_api_key()
    school = School(name=name, channel=channel, time_zone=time_zone)
    school.set_api_key(key)
    school.save()
    forget_key(school.api_key_hash)
    return school, key


def rotate_key(school: School) -> str:
    """Give the school a new key; the old one stops working at once."""
    old_hash = school.api_key_hash
    key = new_api_key()
    with transaction.atomic():
        school.set_api_key(key)
        school.save(update_fields=["api_key_hash", "api_key_hint"])
    forget_key(old_hash)
    return key


def revoke(school: School) -> None:
    """Revoke the school's key: its agent gets 403 until the key is rotated."""
    school.revoked_at = timezone.now()
    school.save(update_fields=["revoked_at"])
    forget_key(school.api_key_hash)


def reinstate(school: School) -> None:
    """Undo a revocation (the same key works again)."""
    school.revoked_at = None
    school.save(update_fields=["revoked_at"])
    forget_key(school.api_key_hash)


def forget_key(key_hash: str) -> None:
    """Drop the cached lookup of a key (after any change to its school)."""
    _local_keys.pop(key_hash, None)
    cache.delete(f"{KEY_CACHE_PREFIX}{key_hash}")


def owner_of_key(key: str) -> KeyOwner | None:
    """The school holding ``key`` (cached for a few minutes), or None."""
    key_hash = hash_api_key(key)
    local = _local_keys.get(key_hash)
    now = time.monotonic()
    if local is not None and local[0] > now:
        return local[1]
    owner = _shared_owner_of_key(key_hash)
    if len(_local_keys) > 10_000:
        _local_keys.clear()
    _local_keys[key_hash] = (now + LOCAL_KEY_TTL, owner)
    return owner


def _shared_owner_of_key(key_hash: str) -> KeyOwner | None:
    cache_key = f"{KEY_CACHE_PREFIX}{key_hash}"
    cached = cache.get(cache_key)
    if cached is not None:
        return KeyOwner(*cached) if cached else None
    school = (
        School.objects.filter(api_key_hash=key_hash)
        .only("id", "channel", "revoked_at")
        .first()
    )
    owner = (
        KeyOwner(school.id, school.channel, school.revoked_at is not None, key_hash)
        if school
        else None
    )
    # Unknown keys are cached too (as empty), so guessing costs no queries.
    cache.set(cache_key, tuple(owner) if owner else (), KEY_CACHE_TTL)
    return owner
