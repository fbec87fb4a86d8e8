"""Byte ranges from S3 and S3-compatible services: signed GETs over aiohttp.

Credentials come from aiobotocore's chain and signatures from botocore
(``_s3_auth``); URLs are built as botocore builds them (``_s3_addressing``).
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from ..errors import PermissionDeniedError, RasteretError, ReadFailedError
from ._bodies import drain, range_answer
from ._checks import head_dict
from ._loops import PerLoopClient
from ._ranged import RetriedStore
from ._redirects import client_error
from ._retry import (
    RetryPolicy,
    TransientError,
    describe_range,
    not_found,
    permission_denied,
    redact_url,
    retry_async,
    scrub,
)
from ._s3_addressing import AddressingStyle, configured_endpoint, object_url
from ._s3_auth import S3Signer, default_region, open_signer
from .http import answer_error, head_answer, open_session

__all__ = ["S3Store", "classify_s3_error", "split_s3_path"]

_ERROR_CODE = re.compile(rb"<Code>\s*([^<\s]+)\s*</Code>")

_TRANSIENT_CODES = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
}
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound"}
_DENIED_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccountProblem",
}
# Answers that carry ``x-amz-bucket-region`` when the bucket lives elsewhere.
_WRONG_REGION = {301, 307, 400}
_CLIENT_KEYS = {"verify"}


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


def error_code(body: bytes) -> str:
    """The ``<Code>`` of an S3 error document ("" when there is none, as for HEAD)."""
    m = _ERROR_CODE.search(body[:4096])
    return m.group(1).decode("ascii", "replace") if m else ""


def classify_s3_error(resp: aiohttp.ClientResponse, code: str, url: str, what: str) -> Exception:
    """The error to raise for an S3 answer other than 200/206 (or a :class:`TransientError`).

    S3's error code decides where it is known (a ``SlowDown`` is worth another
    attempt whatever its status); the HTTP status decides otherwise.
    """
    if code in _NOT_FOUND_CODES:
        return not_found(url)
    if code in _DENIED_CODES:
        return permission_denied(url, code, s3=True)
    if code in _TRANSIENT_CODES:
        return TransientError(f"S3 {code}")
    return answer_error(resp, url, what, detail=code and f"S3 {code}", s3=True)


@dataclass
class _S3Client:
    """What a store holds per event loop: the session, the signer, known bucket regions."""

    session: aiohttp.ClientSession
    signer: S3Signer
    region: str
    endpoint_url: str | None
    bucket_regions: dict[str, str] = field(default_factory=dict)


class S3Store(PerLoopClient, RetriedStore):
    """Read byte ranges of S3 objects; paths are ``s3://bucket/key`` or ``bucket/key``.

    Each range is one signed ``GET`` with a ``Range`` header, sent over a pooled
    aiohttp session made lazily per event loop (closed when that loop shuts
    down). A bucket that answers from another region (``x-amz-bucket-region``)
    is asked again there, and remembered. The store holds only options, so it
    pickles for dask.

    Parameters
    ----------
    anon
        Send unsigned requests (public buckets); no credentials are looked up.
    profile
        Named profile of the AWS config files.
    region_name
        Region of the bucket(s); None: ``AWS_DEFAULT_REGION``, the profile's
        region, else us-east-1, and buckets elsewhere are followed.
    endpoint_url
        An S3-compatible service (MinIO, Ceph, R2, moto), e.g.
        ``http://127.0.0.1:9000``; None: ``AWS_ENDPOINT_URL_S3`` or
        ``AWS_ENDPOINT_URL`` if set, else AWS.
    key, secret, token
        Explicit credentials (otherwise the default chain: env, config, SSO, IMDS, ...).
    requester_pays
        Send ``x-amz-request-payer: requester`` (the reader's account pays the transfer).
    timeout
        Seconds one attempt may take, body included; a stalled attempt is retried.
    max_attempts, backoff, max_backoff
        Retry policy (see :class:`~xarray_rasteret.storage._retry.RetryPolicy`).
    max_connections
        Connection pool size per event loop.
    addressing_style
        ``"auto"`` (virtual-hosted on AWS where the bucket name allows, path
        style on other endpoints), ``"virtual"`` or ``"path"``.
    client_kwargs
        ``{"verify": False}`` to skip TLS verification, or ``{"verify": path}``
        for a CA bundle (default: ``AWS_CA_BUNDLE`` if set, else the system's).
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
        addressing_style: AddressingStyle = "auto",
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if anon and (key or secret or token or profile):
            raise ValueError("anon=True cannot be combined with key/secret/token/profile")
        if bool(key) != bool(secret) or (token and not key):
            raise ValueError(
                "key and secret go together (a token needs both): pass them, or none for the chain"
            )
        unknown = set(client_kwargs or {}) - _CLIENT_KEYS
        if unknown:
            raise ValueError(
                f"client_kwargs {sorted(unknown)} are not understood by the S3 store; "
                f"it takes {sorted(_CLIENT_KEYS)}"
            )
        if addressing_style not in ("auto", "virtual", "path"):
            raise ValueError(
                f"addressing_style must be 'auto', 'virtual' or 'path', not {addressing_style!r}"
            )
        self.anon = anon
        self.profile = profile
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self._key, self._secret, self._token = key, secret, token
        self.requester_pays = requester_pays
        self.policy = RetryPolicy(max_attempts, backoff, max_backoff, timeout)
        self.max_connections = max_connections
        self.addressing_style = addressing_style
        self.client_kwargs = dict(client_kwargs or {})
        self._start_clients()

    # -- client per loop --------------------------------------------------------------

    def _ssl(self) -> Any:
        # botocore's order: the store's own setting, then AWS_CA_BUNDLE.
        verify = self.client_kwargs.get("verify", os.environ.get("AWS_CA_BUNDLE") or True)
        if isinstance(verify, str):
            try:
                return ssl.create_default_context(cafile=verify)
            except (OSError, ssl.SSLError) as e:
                error = ReadFailedError(
                    f"cannot load the CA bundle {verify!r} (client_kwargs['verify'] or "
                    f"AWS_CA_BUNDLE): {e}; give the path of a PEM file of certificates"
                )
            raise error
        return bool(verify)

    async def _open(self) -> _S3Client:
        signer = await open_signer(
            anon=self.anon,
            profile=self.profile,
            key=self._key,
            secret=self._secret,
            token=self._token,
        )
        region = self.region_name or default_region(self.profile)
        endpoint = self.endpoint_url or configured_endpoint()
        session = open_session(self.max_connections, ssl=self._ssl())
        return _S3Client(session, signer, region, endpoint)

    @staticmethod
    async def _close(client: _S3Client) -> None:
        await client.session.close()

    def __repr__(self) -> str:
        creds = "anon" if self.anon else ("explicit" if self._key else "default chain")
        return (
            f"S3Store(credentials={creds}, region_name={self.region_name!r}, "
            f"endpoint_url={self.endpoint_url!r}, requester_pays={self.requester_pays})"
        )

    # -- one attempt ----------------------------------------------------------------

    def _secrets(self) -> list[str]:
        return [v for v in (self._secret, self._token) if v]

    async def _signed(
        self, method: str, target: str, headers: dict[str, str], region: str | None, url: str
    ) -> tuple[_S3Client, dict[str, str]]:
        """The loop's client and, with a region, the signed headers; botocore's errors made ours.

        Credentials are loaded (and refreshed) here, by botocore's chain:
        profiles, SSO, container and instance roles, credential processes.
        """
        try:
            client = await self._clients.get()
            if region is None:
                return client, {}
            return client, await client.signer.headers(method, target, headers, region)
        except RasteretError:
            raise
        except Exception as e:
            if not type(e).__module__.startswith(("botocore", "aiobotocore")):
                raise
            words = scrub(f"{type(e).__name__}: {e}"[:300], url, self._secrets())
        raise PermissionDeniedError(
            f"cannot sign the request for {redact_url(url)}: the AWS credentials could not be "
            f"loaded ({words}); check the profile, key/secret/token or the AWS_* environment "
            "variables, or pass anon=True for public buckets"
        )

    async def _ask(
        self, method: str, path: str, what: str, headers: dict[str, str], read: Any,
        query: str = "",
    ) -> Any:  # fmt: skip
        """Send one signed request and return ``await read(resp)`` for a 2xx answer.

        A bucket in another region is asked once more there; other answers
        raise the error :func:`classify_s3_error` picks.
        """
        if query:  # a bucket's request (a listing): ``path`` is the bucket
            bucket, key, url = path, "", f"s3://{path}/"
        else:
            bucket, key = split_s3_path(path)
            url = self._display(path)
        client, _ = await self._signed(method, "", headers, None, url)
        if self.requester_pays:
            headers = {**headers, "x-amz-request-payer": "requester"}
        for _ in range(2):
            region = client.bucket_regions.get(bucket, client.region)
            target = object_url(
                bucket, key, region=region, endpoint_url=client.endpoint_url,
                addressing_style=self.addressing_style,
            ) + query  # fmt: skip
            client, signed = await self._signed(method, target, headers, region, url)
            try:
                async with client.session.request(
                    method, URL(target, encoded=True), headers=signed, allow_redirects=False
                ) as resp:
                    if 200 <= resp.status < 300:
                        return await read(resp)
                    body = await drain(resp)  # an error document is small; a hostile one is cut
                    moved = resp.headers.get("x-amz-bucket-region")
                    if resp.status in _WRONG_REGION and moved and moved != region:
                        client.bucket_regions[bucket] = moved
                        continue
                    raise classify_s3_error(resp, error_code(body), url, what)
            except RasteretError:
                raise
            except (aiohttp.ClientError, ValueError) as e:
                error = client_error(e, url, what, self._secrets())
            raise error
        raise TransientError(f"{url} moved between regions twice in one attempt")

    async def _fetch(self, path: str, start: int, end: int) -> tuple[bytes, int | None, str | None]:
        what = describe_range(start, end)

        async def read(resp: aiohttp.ClientResponse) -> tuple[bytes, int | None, str | None]:
            got = await range_answer(resp, start, end, self._display(path))
            if got is None:  # another 2xx: not an answer to a range
                raise answer_error(resp, self._display(path), what, s3=True)
            return got

        return await self._ask("GET", path, what, {"Range": f"bytes={start}-{end - 1}"}, read)

    def _display(self, path: str) -> str:
        return f"s3://{'/'.join(split_s3_path(path))}"

    async def list_async(self, prefix: str, *, page_size: int = 1000) -> list[str]:
        """The keys under ``bucket/prefix`` as ``bucket/key`` paths (ListObjectsV2, all pages)."""
        from urllib.parse import quote, urlencode
        from xml.etree import ElementTree

        bucket, key_prefix = split_s3_path(prefix)
        keys: list[str] = []
        token = None
        while True:
            q = {"list-type": "2", "max-keys": str(page_size), "prefix": key_prefix}
            if token:
                q["continuation-token"] = token
            query = "?" + urlencode(sorted(q.items()), quote_via=quote, safe="-_.~")
            body = await self._list_page(bucket, query, self._display(prefix))
            root = ElementTree.fromstring(body)
            top = {el.tag.rsplit("}", 1)[-1]: el.text for el in root}
            keys += [f"{bucket}/{el.text}" for el in root.iter()
                     if el.tag.endswith("}Key") and el.text]  # fmt: skip
            token = top.get("NextContinuationToken")
            if top.get("IsTruncated") != "true" or not token:
                return keys

    async def _list_page(self, bucket: str, query: str, url: str) -> bytes:
        async def read(resp: aiohttp.ClientResponse) -> bytes:
            return await drain(resp, limit=64 << 20)  # a page lists <= 1000 keys

        async def attempt() -> bytes:
            result: bytes = await self._ask("GET", bucket, "a listing", {}, read, query)
            return result

        return await retry_async(attempt, self.policy, url=url, what="a listing")

    async def head_async(self, path: str) -> dict[str, Any]:
        """Return obspec-style ``path``/``size``/``e_tag`` of the object (``HEAD``)."""

        async def read(resp: aiohttp.ClientResponse) -> dict[str, Any]:
            await drain(resp)
            size, etag = head_answer(resp)
            if size is None:
                raise TransientError("HEAD answer without Content-Length")
            return head_dict(path, size, etag)

        async def attempt() -> dict[str, Any]:
            return await self._ask("HEAD", path, "size and ETag", {}, read)

        return await retry_async(
            attempt, self.policy, url=self._display(path), what="size and ETag"
        )
