"""Storage targets: the local backup directory and an optional S3-compatible copy.

The local directory holds the primary copy. Files are written to a hidden temp
name and renamed into place only when complete and flushed to disk, so a crash
never leaves a file that looks finished. Leftover temp files are removed by the
next backup job (``remove_stale_temp_files``).
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings

from backups.errors import BackupError

TEMP_SUFFIX = ".partial"
# Below this much free space a new backup is refused up front.
MIN_FREE_BYTES = 64 * 1024 * 1024


def full_disk_message(directory: Path) -> str:
    return (
        f"The disk holding the backup directory {directory} is full, so the backup "
        "could not be written; the incomplete file was removed and the backup is "
        "marked failed. Free space there (prune old backups, or move BACKUP_DIR to a "
        "larger disk) and run the backup again."
    )


class LocalTarget:
    """A directory on the agent's disk (``BACKUP_DIR``)."""

    name = "local"

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or settings.BACKUP_DIR)

    def path(self, file_name: str) -> Path:
        return self.directory / file_name

    def location(self, file_name: str) -> str:
        return str(self.path(file_name))

    def ensure(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BackupError(
                f"The backup directory {self.directory} cannot be created ({e}). "
                "Create it and make it writable by the agent, or set BACKUP_DIR."
            ) from e

    def temp_path(self, file_name: str) -> Path:
        return self.directory / f".{file_name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"

    @contextmanager
    def writing(self, file_name: str) -> Iterator[BinaryIO]:
        """Write ``file_name`` atomically: temp file, fsync, rename, fsync dir.

        On any error the temp file is removed and nothing appears under the
        final name. A full disk is reported as such.
        """
        self.ensure()
        temp = self.temp_path(file_name)
        try:
            with temp.open("wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path(file_name))
            self._fsync_directory()
        except OSError as e:
            temp.unlink(missing_ok=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise BackupError(full_disk_message(self.directory)) from e
            raise
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def open_read(self, file_name: str) -> BinaryIO:
        return self.path(file_name).open("rb")

    def exists(self, file_name: str) -> bool:
        return self.path(file_name).is_file()

    def size(self, file_name: str) -> int:
        return self.path(file_name).stat().st_size

    def delete(self, file_name: str) -> None:
        self.path(file_name).unlink(missing_ok=True)

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temp files a killed job left behind; call only under the job lock."""
        if not self.directory.is_dir():
            return []
        removed = []
        for temp in self.directory.glob(f".*{TEMP_SUFFIX}"):
            temp.unlink(missing_ok=True)
            removed.append(temp)
        return removed

    def check_writable(self) -> None:
        """Raise ``BackupError`` unless a backup could be written here now."""
        self.ensure()
        probe = self.directory / f".write-probe-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
        try:
            probe.write_bytes(b"ok")
        except OSError as e:
            raise BackupError(
                f"The backup directory {self.directory} is not writable ({e}). "
                "Fix its permissions or set BACKUP_DIR to a writable directory."
            ) from e
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(self.directory).free
        if free < MIN_FREE_BYTES:
            raise BackupError(
                f"The backup directory {self.directory} has only {free // 1024} KiB "
                "free. Free space there or move BACKUP_DIR to a larger disk."
            )


class S3Target:
    """An S3-compatible bucket through django-storages (``BACKUP_S3_*`` settings)."""

    name = "s3"

    def __init__(self) -> None:
        from storages.backends.s3 import S3Storage

        self.bucket = settings.BACKUP_S3_BUCKET
        self.prefix = settings.BACKUP_S3_PREFIX
        self.storage = S3Storage(
            bucket_name=self.bucket,
            location=self.prefix.strip("/"),
            endpoint_url=settings.BACKUP_S3_ENDPOINT_URL or None,
            region_name=settings.BACKUP_S3_REGION,
            access_key=settings.BACKUP_S3_ACCESS_KEY_ID or None,
            secret_key=settings.BACKUP_S3_SECRET_ACCESS_KEY or None,
            file_overwrite=True,
            default_acl=None,
        )

    def key(self, file_name: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{file_name}" if prefix else file_name

    def location(self, file_name: str) -> str:
        return f"s3://{self.bucket}/{self.key(file_name)}"

    def _explain(self, action: str, e: Exception) -> BackupError:
        return BackupError(
            f"Could not {action} in S3 bucket {self.bucket!r} at "
            f"{settings.BACKUP_S3_ENDPOINT_URL or 'AWS'}: {e}. Check BACKUP_S3_* "
            "settings, the credentials and that the bucket exists."
        )

    def check(self) -> None:
        """Raise ``BackupError`` unless the bucket answers."""
        try:
            self.storage.connection.meta.client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            raise self._explain("reach the bucket", e) from e

    def upload(self, file_name: str, fileobj: BinaryIO) -> None:
        """Stream ``fileobj`` up (multipart for big files; flat memory)."""
        from django.core.files import File

        try:
            self.storage.save(file_name, File(fileobj, name=file_name))
        except Exception as e:
            raise self._explain(f"upload {file_name}", e) from e

    def download(self, file_name: str, sink: Any) -> None:
        """Stream the object into ``sink`` (a writable binary file)."""
        try:
            self.storage.connection.meta.client.download_fileobj(
                self.bucket, self.key(file_name), sink
            )
        except Exception as e:
            raise self._explain(f"download {file_name}", e) from e

    def exists(self, file_name: str) -> bool:
        try:
            return bool(self.storage.exists(file_name))
        except Exception as e:
            raise self._explain(f"look up {file_name}", e) from e

    def size(self, file_name: str) -> int:
        try:
            return int(self.storage.size(file_name))
        except Exception as e:
            raise self._explain(f"read the size of {file_name}", e) from e

    def delete(self, file_name: str) -> None:
        try:
            self.storage.delete(file_name)
        except Exception as e:
            raise self._explain(f"delete {file_name}", e) from e


def copy_target() -> S3Target | None:
    """The configured second target, or None."""
    if settings.BACKUP_COPY_TARGET == "s3":
        return S3Target()
    return None
