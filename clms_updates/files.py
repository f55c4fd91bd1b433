"""File checksums, written once for every app (bundles, caches, backups, images).

``hashlib.file_digest`` reads in large blocks without holding the file in memory;
every sha256 of a file in the project goes through ``sha256_file`` or
``sha256_stream`` so a fix (a limit, a faster path) lands everywhere at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from typing import Any, BinaryIO, cast


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """The sha256 hex and the byte count of what is left in the file ``stream``."""
    start = stream.tell()
    # file_digest reads any binary file object with readinto (typeshed is narrower).
    digest = hashlib.file_digest(cast(Any, stream), "sha256")
    return digest.hexdigest(), stream.tell() - start


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex of the whole file at ``path``."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def sha256_and_size(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The sha256 hex and size of the file at ``path``, read once."""
    with open(path, "rb") as stream:
        digest, size = sha256_stream(stream)
    return digest, size


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Free bytes on the file system that holds ``path`` (or would, once made)."""
    place = os.path.abspath(path)
    while not os.path.exists(place) and os.path.dirname(place) != place:
        place = os.path.dirname(place)
    return shutil.disk_usage(place).free
