"""Streaming helpers: compress, hash and decompress without holding a file in memory.

The backup file is zstd-compressed (multi-threaded); its sha256 is taken over
the compressed bytes as they are written, so verify can check the stored file
byte for byte without decompressing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import zstandard
from django.conf import settings

CHUNK_SIZE = 1 << 20


class HashingWriter:
    """A file-like sink that hashes and counts what passes through to ``raw``."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    def hexdigest(self) -> str:
        return self.hasher.hexdigest()


def compressor() -> zstandard.ZstdCompressor:
    """The configured zstd compressor (threads=0 in settings means all cores)."""
    threads = settings.BACKUP_ZSTD_THREADS or -1
    return zstandard.ZstdCompressor(
        level=settings.BACKUP_ZSTD_LEVEL, threads=threads, write_checksum=True
    )


def decompressed_chunks(fileobj: BinaryIO) -> Iterator[bytes]:
    """The original dump, chunk by chunk, from a compressed backup file.

    Raises ``zstandard.ZstdError`` on damaged data (the caller turns it into a
    message that names the backup).
    """
    reader = zstandard.ZstdDecompressor().stream_reader(
        fileobj, read_size=CHUNK_SIZE, read_across_frames=True
    )
    while chunk := reader.read(CHUNK_SIZE):
        yield chunk
