"""The channel layer that carries live progress: channels-redis, with a
blocking receive that always ends before the Redis client stops waiting.

channels-redis receives with ``BZPOPMIN`` blocking 5 s on the server; redis-py
8 reads every reply with a 5 s socket timeout. The two race, the read loses
about every other time, and each loss closes the page's WebSocket ("Connection
lost — reconnecting…" every few seconds during a quiet step). Here the socket
timeout is set explicitly and the server-side block is at most half of it, so
the empty reply always arrives in time.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.utils import decode_hosts

SOCKET_TIMEOUT_SECONDS = 5.0


class ChannelLayer(RedisChannelLayer):
    def __init__(self, hosts: list[Any] | None = None, **config: Any) -> None:
        hosts = [
            {"socket_timeout": SOCKET_TIMEOUT_SECONDS, **host}
            for host in decode_hosts(hosts)
        ]
        super().__init__(hosts=hosts, **config)
        shortest = min(host["socket_timeout"] or 0 for host in self.hosts)
        if shortest:
            # Whole seconds: every Redis version takes an integer timeout.
            self.brpop_timeout = max(1, int(shortest // 2))
