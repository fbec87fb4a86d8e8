"""Byte ranges from S3 and S3-compatible services with aiobotocore."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import botocore.exceptions as bce

from ..errors import PermissionDeniedError, ReadFailedError, TruncatedFileError
from ._checks import head_dict, normalize_etag
from ._loops import PerLoopClient
from ._ranged import RetriedStore
from ._retry import (
    RetryPolicy,
    TransientError,
    describe_range,
    not_found,
    permission_denied,
    redact_url,
    retry_async,
)
from ._s3_models import share_s3_models

__all__ = ["S3Store", "split_s3_path"]

_CONTENT_RANGE_TOTAL = re.compile(r"/(\d+)\s*$")

_TRANSIENT_CODES = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "500",
    "502",
    "503",
    "504",
    "429",
}
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
_DENIED_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccountProblem",
    "401",
    "403",
}
_TRANSIENT_BOTO = (
    bce.HTTPClientError,  # closed/reset connections, read timeouts, broken streams
    bce.ConnectionError,  # cannot connect, connect timeouts
    bce.IncompleteReadError,  # body shorter than Content-Length
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    asyncio.IncompleteReadError,
)


def split_s3_path(path: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` or ``bucket/key`` into ``(bucket, key)``.

    Examples
    --------
    >>> split_s3_path("s3://sentinel-cogs/a/b.tif")
    ('sentinel-cogs', 'a/b.tif')
    """
    rest = path[5:] if path.startswith("s3://") else path.lstrip("/")
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise ValueError(f"not an S3 object path (s3://bucket/key or bucket/key): {path!r}")
    return bucket, key


def classify_client_error(error: bce.ClientError, url: str, what: str) -> Exception:
    """Map a botocore ``ClientError`` to the error to raise (or a :class:`TransientError`)."""
    info = error.response.get("Error", {})
    code = str(info.get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _NOT_FOUND_CODES or status == 404:
        return not_found(url)
    if code in _DENIED_CODES or status in (401, 403):
        return permission_denied(url, code or f"HTTP {status}", s3=True)
    if code == "InvalidRange" or status == 416:
        return TruncatedFileError(f"{what} starts past the end of {redact_url(url)}")
    if code in _TRANSIENT_CODES or status == 429 or (status is not None and status >= 500):
        return TransientError(f"S3 {code or status}")
    return ReadFailedError(f"reading {what} of {redact_url(url)} failed: S3 {code or status}")


class S3Store(PerLoopClient, RetriedStore):
    """Read byte ranges of S3 objects; paths are ``s3://bucket/key`` or ``bucket/key``.

    One aiobotocore client (own connection pool, botocore's retries off: we
    retry) is made lazily per event loop and closed when that loop shuts down.
    The store holds only options, so it pickles for dask.

    Parameters
    ----------
    anon
        Send unsigned requests (public buckets); no credentials are looked up.
    profile
        Named profile of the AWS config files.
    region_name
        Region of the bucket(s); None lets botocore decide (and follow redirects).
    endpoint_url
        An S3-compatible service (MinIO, Ceph, R2, moto), e.g. ``http://127.0.0.1:9000``.
    key, secret, token
        Explicit credentials (otherwise the default chain: env, config, IMDS, ...).
    requester_pays
        Send ``RequestPayer=requester`` (the reader's account pays the transfer).
    timeout
        Seconds one attempt may take, body included; a stalled attempt is retried.
    max_attempts, backoff, max_backoff
        Retry policy (see :class:`~xarray_rasteret.storage._retry.RetryPolicy`).
    max_connections
        Connection pool size per event loop.
    client_kwargs
        Further keywords for ``create_client`` (e.g. ``{"verify": False}``).
    """

    def __init__(
        self,
        *,
        anon: bool = False,
        profile: str | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        requester_pays: bool = False,
        timeout: float | None = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        max_connections: int = 256,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if anon and (key or secret or token or profile):
            raise ValueError("anon=True cannot be combined with key/secret/token/profile")
        self.anon = anon
        self.profile = profile
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self._key, self._secret, self._token = key, secret, token
        self.requester_pays = requester_pays
        self.policy = RetryPolicy(max_attempts, backoff, max_backoff, timeout)
        self.max_connections = max_connections
        self.client_kwargs = dict(client_kwargs or {})
        self._start_clients()

    # -- client per loop --------------------------------------------------------------

    async def _open(self) -> Any:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import AioSession
        from botocore import UNSIGNED

        config = AioConfig(
            signature_version=UNSIGNED if self.anon else None,
            max_pool_connections=self.max_connections,
            retries={"total_max_attempts": 1, "mode": "standard"},  # retried by us
            connect_timeout=self.policy.timeout or 60,
            read_timeout=self.policy.timeout or 60,
        )
        session = share_s3_models(AioSession(profile=self.profile))
        kwargs: dict[str, Any] = {
            "region_name": self.region_name,
            "endpoint_url": self.endpoint_url,
            "config": config,
            **self.client_kwargs,
        }
        if self._key or self._secret or self._token:
            kwargs.update(
                aws_access_key_id=self._key,
                aws_secret_access_key=self._secret,
                aws_session_token=self._token,
            )
        return await session.create_client("s3", **kwargs).__aenter__()

    @staticmethod
    async def _close(client: Any) -> None:
        await client.close()

    def __repr__(self) -> str:
        creds = "anon" if self.anon else ("explicit" if self._key else "default chain")
        return (
            f"S3Store(credentials={creds}, region_name={self.region_name!r}, "
            f"endpoint_url={self.endpoint_url!r}, requester_pays={self.requester_pays})"
        )

    # -- one attempt ----------------------------------------------------------------

    def _extra(self) -> dict[str, str]:
        return {"RequestPayer": "requester"} if self.requester_pays else {}

    async def _call(self, url: str, what: str, op: str, **params: Any) -> Any:
        client = await self._clients.get()
        try:
            return await getattr(client, op)(**params, **self._extra())
        except bce.ClientError as e:
            raise classify_client_error(e, url, what) from None
        except bce.NoCredentialsError:
            raise PermissionDeniedError(
                f"no AWS credentials found to read {redact_url(url)}; pass anon=True for "
                "public buckets, or key/secret, profile or the AWS_* environment variables"
            ) from None
        except _TRANSIENT_BOTO as e:
            raise TransientError(f"{type(e).__name__}: {e}") from None

    async def _fetch(self, path: str, start: int, end: int) -> tuple[bytes, int | None, str | None]:
        bucket, key = split_s3_path(path)
        url = f"s3://{bucket}/{key}"
        what = describe_range(start, end)
        resp = await self._call(
            url, what, "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        try:
            async with resp["Body"] as stream:
                body = await stream.read()
        except _TRANSIENT_BOTO as e:
            raise TransientError(f"{type(e).__name__} while reading the body") from None
        m = _CONTENT_RANGE_TOTAL.search(resp.get("ContentRange") or "")
        total = int(m.group(1)) if m else None
        want = (min(end, total) if total is not None else end) - start
        if len(body) != want:
            raise TransientError(f"short read: {len(body)} of {want} bytes")
        return body, total, normalize_etag(resp.get("ETag"))


    def _display(self, path: str) -> str:
        return f"s3://{'/'.join(split_s3_path(path))}"

    async def head_async(self, path: str) -> dict[str, Any]:
        """Return obspec-style ``path``/``size``/``e_tag`` of the object (``HeadObject``)."""
        bucket, key = split_s3_path(path)
        url = f"s3://{bucket}/{key}"

        async def attempt() -> dict[str, Any]:
            head = await self._call(url, "HEAD", "head_object", Bucket=bucket, Key=key)
            return head_dict(path, int(head["ContentLength"]), normalize_etag(head.get("ETag")))

        return await retry_async(attempt, self.policy, url=url, what="size and ETag")
