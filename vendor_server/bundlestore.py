"""Offline bundles served from S3-compatible object storage, by presigned URL.

With ``VENDOR_BUNDLE_S3_BUCKET`` set, ``GET releases/<v>/bundle`` answers a
302 to a presigned URL valid for ``VENDOR_BUNDLE_URL_SECONDS`` instead of
streaming the file through the web process; the object is uploaded from the
local bundle folder the first time it is asked for. The agent follows the
redirect only to an allowed URL and checks every byte against the signed
size and sha256, so object storage is trusted with nothing.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from vendor_server.models import Release

logger = logging.getLogger(__name__)


class BundleStoreError(RuntimeError):
    """Object storage could not be reached or refused; the caller serves the file itself."""


def enabled() -> bool:
    return bool(settings.VENDOR_BUNDLE_S3_BUCKET)


@lru_cache(maxsize=4)
def _client(endpoint: str, region: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        aws_access_key_id=key_id or None,
        aws_secret_access_key=secret or None,
        config=Config(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 2},
        ),
    )


def client() -> Any:
    return _client(
        settings.VENDOR_BUNDLE_S3_ENDPOINT_URL,
        settings.VENDOR_BUNDLE_S3_REGION,
        settings.VENDOR_BUNDLE_S3_ACCESS_KEY_ID,
        settings.VENDOR_BUNDLE_S3_SECRET_ACCESS_KEY,
    )


def key_for(release: Release) -> str:
    # The sha256 in the key: a re-built bundle is a new object, never a changed one.
    return (
        f"{settings.VENDOR_BUNDLE_S3_PREFIX}{release.product}/{release.version}/"
        f"{release.bundle_sha256}/{Path(release.bundle_file).name}"
    )


def presigned_url(release: Release, local: Path) -> str:
    """A short-lived GET URL for the release's bundle, uploading it first if missing."""
    s3, bucket, key = client(), settings.VENDOR_BUNDLE_S3_BUCKET, key_for(release)
    try:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            present = int(head.get("ContentLength", -1)) == release.bundle_size
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in (
                "404",
                "NoSuchKey",
                "NotFound",
            ):
                raise
            present = False
        if not present:
            logger.info(
                "Uploading the bundle of %s to s3://%s/%s", release, bucket, key
            )
            s3.upload_file(str(local), bucket, key)
        return str(
            s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=settings.VENDOR_BUNDLE_URL_SECONDS,
            )
        )
    except (BotoCoreError, ClientError, OSError) as e:
        raise BundleStoreError(f"object storage failed for {release}: {e}") from None
