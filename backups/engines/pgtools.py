"""PostgreSQL client tools: finding them, their versions, and feeding them streams."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from backups.errors import BackupError

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def tool_path(tool: str) -> str:
    """The full path of a PostgreSQL client tool, from CLMS_PG_BINDIR or PATH."""
    bindir = settings.CLMS_PG_BINDIR
    if bindir:
        candidate = Path(bindir) / tool
        if candidate.is_file():
            return str(candidate)
        raise BackupError(
            f"{tool} is not in CLMS_PG_BINDIR={bindir}. Point CLMS_PG_BINDIR at the "
            "bin directory of the PostgreSQL client tools (for example "
            "/usr/lib/postgresql/15/bin)."
        )
    found = shutil.which(tool)
    if not found:
        raise BackupError(
            f"{tool} was not found on PATH, so PostgreSQL backups cannot run. Install "
            "the PostgreSQL client tools matching the server (for example `apt-get "
            "install postgresql-client-15`) or set CLMS_PG_BINDIR."
        )
    return found


TOOLS = ("pg_dump", "pg_restore", "psql")


@functools.lru_cache(maxsize=32)
def _cached_version(path: str, mtime_ns: int) -> str:
    result = subprocess.run(
        [path, "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or result.stderr.strip()


def tool_version(path: str) -> str:
    """``tool --version``, cached until the binary changes (a worker runs many jobs)."""
    return _cached_version(path, os.stat(path).st_mtime_ns)


def major_version(version: str) -> int:
    match = re.search(r"(\d+)(?:\.(\d+))?", version)
    if not match:
        raise BackupError(f"Could not read a version number from {version!r}.")
    return int(match.group(1))


def stderr_tail(handle: IO[bytes]) -> str:
    handle.seek(0)
    text = handle.read().decode(errors="replace").strip()
    return text[-2000:]


def widen_pipe(stream: Any) -> None:
    """Ask for a 1 MiB pipe buffer (Linux): fewer wake-ups per MiB streamed."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, 1 << 20)


def feed(process: subprocess.Popen[bytes], chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to the process's stdin; stop quietly if it exits early."""
    assert process.stdin is not None
    widen_pipe(process.stdin)
    try:
        for chunk in chunks:
            process.stdin.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()


def feed_all(processes: list[subprocess.Popen[bytes]], chunks: Iterable[bytes]) -> None:
    """Write each chunk to every process still reading; close their stdin."""
    alive = [p for p in processes if p.stdin is not None]
    try:
        for chunk in chunks:
            for process in list(alive):
                try:
                    process.stdin.write(chunk)  # type: ignore[union-attr]
                except BrokenPipeError:
                    alive.remove(process)
            if not alive:
                break
    finally:
        for process in processes:
            with contextlib.suppress(BrokenPipeError, AttributeError):
                process.stdin.close()  # type: ignore[union-attr]


def feed_each(pairs: list[tuple[subprocess.Popen[bytes], Iterable[bytes]]]) -> None:
    """Feed each process its own stream, all at once (one thread per stream).

    An error raised by a stream (e.g. a damaged file) is raised here after
    every feeder has stopped.
    """
    errors: list[BaseException] = []

    def run(process: subprocess.Popen[bytes], chunks: Iterable[bytes]) -> None:
        try:
            feed(process, chunks)
        except BaseException as e:  # handed to the caller below
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=pair, name="restore-feed") for pair in pairs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def feed_demuxed(
    processes: list[subprocess.Popen[bytes]],
    records: Iterable[tuple[int, bytes]],
    depth: int = 16,
) -> None:
    """Feed process *n* the records of stream *n*, from one pass over them.

    Each process has its own writer thread and a queue of at most ``depth``
    records (1 MiB each), so one slow process does not hold the others back
    until its queue is full, and memory stays bounded. A process that exits
    early is skipped; an error from ``records`` is raised after every writer
    has stopped.
    """
    queues: list[queue.Queue[bytes | None]] = [
        queue.Queue(maxsize=depth) for _ in processes
    ]

    def write(
        process: subprocess.Popen[bytes], pending: queue.Queue[bytes | None]
    ) -> None:
        assert process.stdin is not None
        alive = True
        while (data := pending.get()) is not None:
            if alive:
                try:
                    process.stdin.write(data)
                except BrokenPipeError:
                    alive = False
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()

    writers = [
        threading.Thread(target=write, args=(process, pending), name="restore-feed")
        for process, pending in zip(processes, queues, strict=True)
    ]
    for writer in writers:
        writer.start()
    try:
        for stream, data in records:
            if stream < len(queues):
                queues[stream].put(data)
    finally:
        for pending in queues:
            pending.put(None)
        for writer in writers:
            writer.join()
