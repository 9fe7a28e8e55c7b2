"""Result and upload images in an S3-compatible bucket, reached through presigned GET URLs.

Two boto3 clients, both SigV4 with path-style addressing (`{endpoint}/{bucket}/{key}`, which every
S3-compatible server understands): one talks to `endpoint` from the server, the other only signs,
with `public_endpoint`, because a SigV4 signature covers the Host header and a URL signed for an
internal address is refused when fetched through a public one. The store checks every signature:
a tampered, expired or foreign URL is answered 403 by the store, never by wanimage.

Retention: at start the bucket gets a lifecycle rule expiring objects after 1 day (the unit S3
lifecycle rules have; stores apply it once a day, so an object may live up to about 48 h), and the
service's retention pass (`purge_older_than`, every few minutes) deletes objects at 24 h on time.
The bucket belongs to wanimage alone: both passes cover every object in it.

Any failure to reach the store becomes ServiceUnavailable (503, retry) on request paths; a missing
object is NotFound."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from wanimage.errors import ApiError, NotFound, ServiceUnavailable
from wanimage.storage.base import InvalidKey, content_type, new_key, validate_key

if TYPE_CHECKING:
    from wanimage.config import Settings

log = logging.getLogger(__name__)

# 2 days, not 1: SDK uploads must live 48 h (results are deleted at 24 h by the retention pass).
LIFECYCLE_RULE_ID = "wanimage-expire-after-2-days"
LIFECYCLE_DAYS = 2
_OLD_RULE_IDS = {"wanimage-expire-after-1-day"}  # put by earlier versions: replaced by ours
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 query signatures last at most 7 days
PUT_RETRY_SECONDS = 3.0  # a fresh SeaweedFS may answer 5xx to the first put while its volume registers
START_RETRY_SECONDS = 10.0  # a store started beside wanimage (compose, tests) may answer late
_MISSING = {"NoSuchKey", "NotFound", "404"}
_NO_BUCKET = {"NoSuchBucket", "NotFound", "404"}
_NO_LIFECYCLE = {"NoSuchLifecycleConfiguration", "NoSuchLifecycle"}

def make_client(
    endpoint: str | None, access_key: str | None, secret_key: str | None, region: str
) -> Any:
    """A SigV4, path-style S3 client. Credentials left None come from boto3's usual chain
    (environment, config files, instance role). Checksums only when the operation requires them:
    S3-compatible stores do not all accept the CRC32 trailers newer botocore sends by default."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()  # its own session: boto3's default one is not thread-safe
    return session.client(
        "s3",
        endpoint_url=endpoint or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region,
        config=config,
    )


def _code(exc: Exception) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


def _server_error(exc: Exception) -> bool:
    """A 5xx answer from the store."""
    return isinstance(exc, ClientError) and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500


def _transient(exc: Exception) -> bool:
    """Worth waiting for at start: no connection, a timeout, or a 5xx from the store."""
    return isinstance(exc, BotoConnectionError | HTTPClientError) or _server_error(exc)


class S3ImageStore:
    def __init__(self, client: Any, bucket: str, *, signer: Any = None, ttl_seconds: int = 86400) -> None:
        if not 1 <= ttl_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"presigned URLs last 1 s to 7 days; result_ttl_seconds is {ttl_seconds}")
        self.client = client
        self.signer = signer or client
        self.bucket = bucket
        self.ttl_seconds = int(ttl_seconds)
        self._put_ok = False  # set by the first put that works

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ImageStore:
        """The store the WANIMAGE_S3_* settings describe, with its bucket and lifecycle rule in place."""
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        args = (settings.s3_access_key, secret, settings.s3_region)
        client = make_client(settings.s3_endpoint, *args)
        public = settings.s3_public_endpoint
        signer = make_client(public, *args) if public and public != settings.s3_endpoint else client
        store = cls(client, settings.s3_bucket or "wanimage", signer=signer, ttl_seconds=settings.result_ttl_seconds)
        store.ensure_bucket()
        return store

    # -- errors -----------------------------------------------------------------------------

    def _error(self, exc: Exception, action: str, key: str | None = None) -> ApiError:
        if key is not None and _code(exc) in _MISSING:
            return NotFound(f"no stored file {key!r}", field="key")
        log.error("S3 %s %s/%s failed: %s", action, self.bucket, key or "", exc)
        return ServiceUnavailable("the image store is unavailable; retry shortly", retry_after=2)

    # -- set-up -----------------------------------------------------------------------------

    def ensure_bucket(self, wait_seconds: float = START_RETRY_SECONDS) -> None:
        """Create the bucket when absent and put the 1-day expiry rule; at start only. A store
        that refuses lifecycle rules (or the permission to set them) is logged, not fatal: the
        retention pass still deletes objects after 24 h while wanimage runs."""
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                self._create_bucket_if_absent()
                break
            except (ClientError, BotoCoreError) as exc:
                if not _transient(exc) or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"S3 store {self.client.meta.endpoint_url} (bucket {self.bucket!r}) "
                        f"is unreachable or refuses wanimage's credentials: {exc}"
                    ) from exc
                time.sleep(0.2)
        try:
            self._put_lifecycle_rule()
        except (ClientError, BotoCoreError) as exc:
            log.warning("S3 bucket %s: could not set the 1-day expiry rule (%s); "
                        "set one yourself or rely on the retention pass", self.bucket, exc)

    def _create_bucket_if_absent(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in _NO_BUCKET:
                raise
        region = self.client.meta.region_name
        extra = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            self.client.create_bucket(Bucket=self.bucket, **extra)
            log.info("S3 bucket %s created", self.bucket)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _put_lifecycle_rule(self) -> None:
        """Add (or refresh) our rule, keeping any rules the bucket's owner set."""
        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
        except ClientError as exc:
            if _code(exc) not in _NO_LIFECYCLE:
                raise
            rules = []
        ours = {"ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": LIFECYCLE_DAYS}}
        if ours in rules and not any(r.get("ID") in _OLD_RULE_IDS for r in rules):
            return
        rules = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID and r.get("ID") not in _OLD_RULE_IDS] + [ours]
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket, LifecycleConfiguration={"Rules": rules}
        )

    # -- objects ----------------------------------------------------------------------------

    def put(self, data: bytes, *, prefix: str, suffix: str = ".png") -> str:
        """Store `data` under a fresh key `<prefix>/<UTC date>/<uuid><suffix>` and return the key."""
        key = new_key(prefix, suffix)
        self.put_named(key, data)
        return key

    def put_named(self, key: str, data: bytes) -> None:
        """Store `data` at `key`, replacing any object there (S3 puts are atomic for readers).
        Transient failures are retried for a few seconds: the put is idempotent."""
        validate_key(key)
        media_type = content_type(key)
        deadline, delay = time.monotonic() + PUT_RETRY_SECONDS, 0.1
        while True:
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=media_type)
                self._put_ok = True
                return
            except (ClientError, BotoCoreError) as exc:
                # Until one put has worked, a 5xx is likely a store still registering its first
                # volume: retry for a few seconds. A store that does not answer fails at once.
                if self._put_ok or not _server_error(exc) or time.monotonic() + delay > deadline:
                    raise self._error(exc, "put", key) from None
                log.info("S3 put %s: %s; retrying", key, exc)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def read(self, key: str) -> bytes:
        validate_key(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "get", key) from None

    def exists(self, key: str) -> bool:
        try:
            validate_key(key)
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except InvalidKey:
            return False
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) in _MISSING:
                return False
            raise self._error(exc, "head", key) from None

    def delete(self, key: str) -> bool:
        """Remove one object; True when it existed."""
        existed = self.exists(key)
        if existed:
            self._delete_keys([key])
        return existed

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the directory `prefix` (e.g. "uploads/<id>"); returns the count."""
        top = validate_key(prefix.strip("/"))
        return self._delete_keys(obj["Key"] for obj in self._list(top + "/"))

    def usage(self, prefix: str) -> tuple[int, int]:
        """(objects, bytes) under the directory `prefix`."""
        objects = list(self._list(validate_key(prefix.strip("/")) + "/"))
        return len(objects), sum(int(obj.get("Size", 0)) for obj in objects)

    def modified_at(self, key: str) -> float:
        """When the object was last written (epoch seconds); NotFound when there is none."""
        validate_key(key)
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["LastModified"].timestamp()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "head", key) from None

    def purge_older_than(
        self, seconds: float, now: float | None = None, *, prefix: str = "", skip: tuple[str, ...] = ()
    ) -> int:
        """Delete objects under `prefix` last modified more than `seconds` ago, except those under
        a `skip` prefix; returns the number deleted."""
        cutoff = datetime.fromtimestamp((time.time() if now is None else now) - seconds, UTC)
        top = validate_key(prefix.strip("/")) + "/" if prefix.strip("/") else ""
        skipped = tuple(p.strip("/") + "/" for p in skip)
        return self._delete_keys(
            obj["Key"] for obj in self._list(top) if obj["LastModified"] < cutoff and not obj["Key"].startswith(skipped)
        )

    def _list(self, prefix: str) -> Iterator[dict]:
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"list {prefix!r} in") from None

    def _delete_keys(self, keys: Iterable[str]) -> int:
        """DeleteObjects in batches of 1000 (the API's limit); returns the number deleted."""
        keys, deleted = list(keys), 0  # listed in full first: no deleting under a paginator
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, "delete", batch[0]["Key"]) from None
            errors = answer.get("Errors", [])
            for error in errors:
                log.warning("S3 delete %s: %s", error.get("Key"), error.get("Message"))
            deleted += len(batch) - len(errors)
        return deleted

    # -- presigned URLs ---------------------------------------------------------------------

    def signed_url(self, key: str, base_url: str = "", *, expires_in: int | None = None) -> str:
        """A presigned GET for `key`, valid `ttl_seconds` (or `expires_in`) from now, made for the
        public endpoint. `base_url` (wanimage's own address) is not part of it: the store serves
        the image. Signing is local: no request reaches the store."""
        validate_key(key)
        seconds = self.ttl_seconds if expires_in is None else int(expires_in)
        return self.signer.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
        )
