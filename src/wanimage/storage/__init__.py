"""Where result images and uploads live, and the signed URLs that reach them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wanimage.storage.base import ImageStore, InvalidKey, validate_key
from wanimage.storage.local import LocalImageStore, load_or_create_secret

if TYPE_CHECKING:
    from wanimage.config import Settings

__all__ = [
    "ImageStore",
    "InvalidKey",
    "LocalImageStore",
    "load_or_create_secret",
    "open_image_store",
    "validate_key",
]


def open_image_store(settings: Settings) -> ImageStore:
    """S3ImageStore when WANIMAGE_S3_ENDPOINT or WANIMAGE_S3_BUCKET is set, else the local store
    under the data directory (the default). boto3 is imported only for S3."""
    if settings.s3_endpoint or settings.s3_bucket:
        from wanimage.storage.s3 import S3ImageStore

        return S3ImageStore.from_settings(settings)
    return LocalImageStore.open(settings.data_dir, ttl_seconds=settings.result_ttl_seconds)
