"""The PostgreSQL backup container (format 2): several dumps in one stream.

A format-2 backup holds two ``pg_dump -Fc -Z0`` archives taken at once from
one exported snapshot, so the table data is read by two server processes in
parallel. Their output is interleaved into one stream (which the caller
compresses with zstd and hashes, as for format 1):

    MAGIC (8 bytes), the number of streams (1 byte), then records: stream id (1 byte), length (4 bytes,
    big-endian), that many bytes of the stream

Stream 0 is a complete archive except the data of the tables in stream 1;
stream 1 holds only the data section of those tables. Format-1 backups are
one plain ``pg_dump`` archive (they begin with ``PGDMP``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from backups.errors import BackupError

MAGIC = b"CLMSPG2\n"
_HEADER = 5


def container_streams(chunks: Iterable[bytes]) -> int:
    """How many streams a format-2 container holds; 0 for a format-1 dump."""
    head = b""
    for chunk in chunks:
        head += bytes(chunk)
        if len(head) > len(MAGIC):
            break
    if head[: len(MAGIC)] != MAGIC or len(head) <= len(MAGIC):
        return 0
    return head[len(MAGIC)]


class ContainerWriter:
    """Interleaves records from several threads into one sink (thread-safe)."""

    def __init__(
        self, sink: Any, on_bytes: Callable[[int], None], streams: int
    ) -> None:
        self.sink = sink
        self.on_bytes = on_bytes
        self.total = 0
        self.lock = threading.Lock()
        sink.write(MAGIC + bytes([streams]))

    def write(self, stream: int, data: Any) -> None:
        header = bytes([stream]) + len(data).to_bytes(4, "big")
        with self.lock:
            self.sink.write(header)
            self.sink.write(data)
            self.total += len(data)
            self.on_bytes(self.total)


def records(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Every record of a container as ``(stream, bytes)``, in file order."""
    buffer = bytearray()
    started = False
    for chunk in chunks:
        buffer += chunk
        position = 0
        if not started:
            if len(buffer) <= len(MAGIC):
                continue
            if buffer[: len(MAGIC)] != MAGIC:
                raise BackupError("the backup is not a CLMS PostgreSQL container.")
            position = len(MAGIC) + 1
            started = True
        view = memoryview(buffer)
        try:
            while len(buffer) - position >= _HEADER:
                length = int.from_bytes(view[position + 1 : position + _HEADER], "big")
                end = position + _HEADER + length
                if end > len(buffer):
                    break
                yield buffer[position], bytes(view[position + _HEADER : end])
                position = end
        finally:
            view.release()
        del buffer[:position]
    if buffer or not started:
        raise BackupError(
            "the backup's container ends in the middle of a record: the file is "
            "truncated or damaged. Make a new backup."
        )


def stream_of(chunks: Iterable[bytes], stream: int) -> Iterator[bytes]:
    """The bytes of one stream of a container, chunk by chunk."""
    for number, data in records(chunks):
        if number == stream:
            yield data
