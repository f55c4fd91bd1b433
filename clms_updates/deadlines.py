"""Overall deadlines for HTTP fetches from outside, headers included.

``requests`` timeouts apply to each socket read, so a server that sends its
headers, an error body or a bundle one byte a second keeps a fetch going for
ever. Fetches made with ``session()`` inside ``watch(...)`` are cut off: a
watchdog thread shuts the request's socket down (the blocked read then fails
at once) when

- the answer's headers have not arrived within ``seconds``, or
- with ``total=True``, the whole answer has not within ``seconds``, or
- with ``min_rate`` (bytes per second), the body falls below that rate,
  averaged since the headers, after a first ``seconds`` of grace.

The caller counts what it reads (``Watch.received``) and, when a read fails,
asks ``Watch.why`` whether the deadline cut it off.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

TICK_SECONDS = 0.2

_local = threading.local()


class Watch:
    """One fetch's deadline; ``why`` is '' until the watchdog cut it off."""

    def __init__(self, seconds: float, *, total: bool, min_rate: float) -> None:
        self.seconds = seconds
        self.total = total
        self.min_rate = min_rate
        self.started = time.monotonic()
        self.body_started: float | None = None
        self.bytes = 0
        self.why = ""
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def headers_arrived(self) -> None:
        if self.body_started is None:
            self.body_started = time.monotonic()

    def received(self, count: int) -> None:
        self.headers_arrived()
        self.bytes += count

    def _watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.why:
                _shut(sock)

    def _overdue(self, now: float) -> str:
        if self.body_started is None:
            if now - self.started > self.seconds:
                return f"no answer arrived within {self.seconds:g} s"
            return ""
        if self.total and now - self.started > self.seconds:
            return f"the answer was still arriving after {self.seconds:g} s"
        body_seconds = now - self.body_started
        if self.min_rate and body_seconds > self.seconds:
            rate = self.bytes / body_seconds
            if rate < self.min_rate:
                return (
                    f"it arrived at {rate / 1024:.1f} KiB/s, slower than the minimum "
                    f"of {self.min_rate / 1024:.0f} KiB/s"
                )
        return ""

    def _expire(self, why: str) -> None:
        with self._lock:
            self.why = why
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def watch(
    seconds: float, *, total: bool = False, min_rate: float = 0
) -> Iterator[Watch]:
    """Cut off fetches of this thread's ``session()`` that overrun (see module)."""
    current = Watch(seconds, total=total, min_rate=min_rate)
    done = threading.Event()

    def watchdog() -> None:
        while not done.wait(TICK_SECONDS):
            why = current._overdue(time.monotonic())
            if why:
                current._expire(why)
                return

    thread = threading.Thread(target=watchdog, name="fetch-deadline", daemon=True)
    previous = getattr(_local, "watch", None)
    _local.watch = current
    thread.start()
    try:
        yield current
    finally:
        done.set()
        _local.watch = previous


def _register(sock: socket.socket | None) -> None:
    current: Watch | None = getattr(_local, "watch", None)
    if current is not None:
        current._watch(sock)


class _Watched:
    """A connection whose socket the current ``watch`` may shut, headers noted."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self.sock)
        answer = super().getresponse(*args, **kwargs)  # type: ignore[misc]
        current: Watch | None = getattr(_local, "watch", None)
        if current is not None:
            current.headers_arrived()
        return answer


class _Connection(_Watched, HTTPConnection):
    pass


class _TLSConnection(_Watched, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


def session() -> requests.Session:
    """A ``requests`` session whose fetches ``watch`` can cut off."""
    made = requests.Session()
    adapter = _Adapter()
    made.mount("http://", adapter)
    made.mount("https://", adapter)
    return made
