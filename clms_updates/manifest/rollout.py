"""Staged rollouts: which schools a release has reached, decided the same on both sides.

A school's place in a rollout is a number 0-99 drawn from its *token* (the
sha256 of its API key, which the vendor stores and the agent can compute) and
the release; a release at ``rollout_percent`` p has reached the schools whose
number is below p. A channel index (format 2) lists every release of the
channel with its percent, the same bytes for every school, so no school can
be handed another's view; the agent keeps what reached it (``visible_part``)
and the vendor serves manifests by the same rule. Critical releases reach
every school.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from clms_updates.manifest.schema import ReleaseIndex


def school_token(api_key: str) -> str:
    """The token of a school's API key (what the vendor stores in place of the key)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def rollout_bucket(token: str, product: str, version: str) -> int:
    """A stable number 0-99 for (school, release): the same everywhere, every time."""
    digest = hashlib.sha256(f"{token}:{product}:{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def has_reached(
    token: str, product: str, version: str, *, percent: int, critical: bool
) -> bool:
    return critical or rollout_bucket(token, product, version) < percent


def visible_part(index: ReleaseIndex, token: str) -> ReleaseIndex:
    """The releases of a channel index that reached this school (format 1: all)."""
    if index.channel is None:
        return index
    return replace(
        index,
        releases=tuple(
            entry
            for entry in index.releases
            if has_reached(
                token,
                index.product,
                entry.version,
                percent=entry.rollout_percent or 0,
                critical=entry.critical,
            )
        ),
    )
