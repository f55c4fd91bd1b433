"""The few cache operations on the poll path, kept to the fewest round trips.

With Redis as the cache (production and the tests with services) the throttle
counters and the check-in buffer use one shared client directly, batched per
process (``_PollBatch``) so that most polls make no network round trip at all. Without Redis (``CACHE_URL=locmem://``,
one process) the Django cache stands in.
"""

from __future__ import annotations

import atexit
import threading
import time
from typing import Any, cast

import redis
from django.conf import settings
from django.core.cache import cache

CHECKINS_KEY = "clms:vendor:checkins"
FLUSHING_KEY = "clms:vendor:checkins:flushing"

_client_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis | None:
    """The shared client of the Redis cache, or None when the cache is not Redis."""
    cache_settings = settings.CACHES["default"]
    if not cache_settings["BACKEND"].endswith("RedisCache"):
        return None
    location = str(cache_settings["LOCATION"])
    client = _clients.get(location)
    if client is None:
        with _client_lock:
            client = _clients.setdefault(location, redis.Redis.from_url(location))
    return client


def count_request(key: str, period: int) -> int:
    """Increment the counter ``key`` of a window of ``period`` seconds; return it."""
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, period + 1, nx=True)
        count, _ = pipe.execute()
        return int(count)
    cache.add(key, 0, period + 1)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, period + 1)
        return 1


class _PollBatch:
    """Throttle counts and check-ins of this process, pushed to Redis in batches.

    1. Each poll adds to this process's pending count of its throttle window and
       overwrites its school's pending check-in: no network round trip.
    2. At most every ``PUSH_INTERVAL`` seconds (or at once when this process alone
       already passes a limit) one pipeline INCRBYs the pending counts, HSETs the
       check-ins, and reads back the fleet-wide totals.
    3. A poll is refused when the last known total plus this process's pending
       count passes the limit: exact within one process, and across processes
       behind by at most ``PUSH_INTERVAL`` of the others' requests.
    """

    PUSH_INTERVAL = 0.5

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.pending: dict[str, int] = {}
        self.periods: dict[str, int] = {}
        self.totals: dict[str, tuple[int, float]] = {}
        self.checkins: dict[str, str] = {}
        self.pushed_at = 0.0

    def add(self, key: str, period: int, school_id: int, value: str, limit: int) -> int:
        now = time.monotonic()
        with self.lock:
            self.pending[key] = self.pending.get(key, 0) + 1
            self.periods[key] = period
            self.checkins[str(school_id)] = value
            total = self.totals.get(key, (0, 0.0))[0] + self.pending[key]
            if now - self.pushed_at < self.PUSH_INTERVAL and total <= limit:
                return total
            self.push_locked(now)
            return self.totals[key][0]

    def push(self) -> None:
        with self.lock:
            self.push_locked(time.monotonic())

    def push_locked(self, now: float) -> None:
        client = redis_client()
        if client is None:
            self.pushed_at = now
            return
        keys = list(self.pending)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.incrby(key, self.pending[key])
            pipe.expire(key, self.periods[key] + 1, nx=True)
        if self.checkins:
            pipe.hset(CHECKINS_KEY, mapping=cast("dict[Any, Any]", self.checkins))
        results = pipe.execute()
        for i, key in enumerate(keys):
            self.totals[key] = (int(results[2 * i]), now + self.periods[key] + 1)
        self.totals = {k: v for k, v in self.totals.items() if v[1] > now}
        self.pending, self.checkins = {}, {}
        self.pushed_at = now


_batch = _PollBatch()
atexit.register(_batch.push)


def reset_local() -> None:
    """Forget this process's unpushed counts and check-ins (tests)."""
    with _batch.lock:
        _batch.reset()


def count_and_checkin(
    key: str,
    period: int,
    limit: int,
    school_id: int,
    clms_version: str,
    agent_version: str,
) -> int:
    """Count this request in its throttle window and buffer the check-in; return the count."""
    value = _checkin_value(clms_version, agent_version)
    if redis_client() is None:
        buffer_checkin(school_id, clms_version, agent_version)
        return count_request(key, period)
    return _batch.add(key, period, school_id, value, limit)


def _checkin_value(clms_version: str, agent_version: str) -> str:
    return f"{time.time():.3f}|{clms_version[:64]}|{agent_version[:64]}"


def buffer_checkin(school_id: int, clms_version: str, agent_version: str) -> None:
    """Remember the school's latest poll (overwrites the previous one)."""
    value = _checkin_value(clms_version, agent_version)
    client = redis_client()
    if client is not None:
        client.hset(CHECKINS_KEY, str(school_id), value)
        return
    buffered: dict[str, str] = cache.get(CHECKINS_KEY) or {}
    buffered[str(school_id)] = value
    cache.set(CHECKINS_KEY, buffered, None)


def take_checkins() -> dict[int, tuple[float, str, str]]:
    """Remove and return every buffered check-in: {school id: (time, clms, agent)}."""
    raw: dict[Any, Any]
    client = redis_client()
    if client is not None:
        _batch.push()
        # RENAME is atomic: polls after it land in a fresh hash for the next flush.
        try:
            client.rename(CHECKINS_KEY, FLUSHING_KEY)
        except redis.ResponseError:  # no such key: nobody polled
            raw = client.hgetall(FLUSHING_KEY)
        else:
            raw = client.hgetall(FLUSHING_KEY)
        client.delete(FLUSHING_KEY)
    else:
        raw = cache.get(CHECKINS_KEY) or {}
        cache.delete(CHECKINS_KEY)
    taken = {}
    for school_id, value in raw.items():
        text = value.decode() if isinstance(value, bytes) else value
        stamp, clms_version, agent_version = text.split("|", 2)
        sid = school_id.decode() if isinstance(school_id, bytes) else school_id
        taken[int(sid)] = (float(stamp), clms_version, agent_version)
    return taken
