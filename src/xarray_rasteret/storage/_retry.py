"""Retries with exponential backoff and full jitter, and safe error messages.

A store describes one attempt as a coroutine function. The attempt raises
:class:`TransientError` (or :class:`TimeoutError`) for faults worth another
try: HTTP 5xx and 429, S3 ``SlowDown``, dropped or reset connections, short
bodies, stalls past the per-attempt timeout. Anything else propagates at once
(:class:`~xarray_rasteret.errors.ObjectNotFoundError` for 404,
:class:`~xarray_rasteret.errors.PermissionDeniedError` for 401/403, ...).

Messages never carry credentials: URLs pass through :func:`redact_url`, which
drops user info and the query string of signed URLs, and headers or
storage options are never formatted into messages or logs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from ..errors import ObjectNotFoundError, PermissionDeniedError, ReadFailedError
from ._stats import record_retry

__all__ = [
    "RetryPolicy",
    "TransientError",
    "describe_range",
    "not_found",
    "permission_denied",
    "redact_url",
    "retry_async",
    "scrub",
]

log = logging.getLogger("xarray_rasteret.storage")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is tried."""

    max_attempts: int = 5
    """Attempts in all, the first included (1 disables retries)."""
    backoff: float = 0.1
    """Base delay in seconds; attempt ``n`` waits ``uniform(0, backoff * 2**n)``."""
    max_backoff: float = 10.0
    """Upper bound of one delay, in seconds (also caps a server's ``Retry-After``)."""
    timeout: float | None = 30.0
    """Seconds one attempt may take, body included, before it is abandoned and retried."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must be >= 0")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 or None, got {self.timeout}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based), with full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return random.uniform(0.0, min(self.max_backoff, self.backoff * 2.0**attempt))


class TransientError(Exception):
    """A fault worth retrying; ``cause`` says what happened, ``retry_after`` the server's hint."""

    def __init__(self, cause: str, retry_after: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after


# Query parameters that make a URL a credential (S3/GCS/Azure signed URLs, tokens).
_SECRET_PARAMS = {
    "signature",
    "sig",
    "token",
    "access_token",
    "key",
    "api_key",
    "apikey",
    "password",
    "credential",
    "se",
    "sp",
    "sv",
    "policy",
    "awsaccesskeyid",
    "expires",
}
_SECRET_PREFIXES = ("x-amz-", "x-goog-", "x-ms-")


def redact_url(url: str) -> str:
    """Return ``url`` safe to show: no user info, no query string if it looks signed.

    Parameters
    ----------
    url
        A URL or path.

    Returns
    -------
    str
        The URL with ``user:password@`` removed and, when any query parameter
        looks like a signature, token or key, the whole query replaced by
        ``<redacted>``. A URL that does not parse keeps only what precedes
        its query or fragment, without user info.

    Examples
    --------
    >>> redact_url("https://b.s3.amazonaws.com/k.tif?X-Amz-Signature=abc&X-Amz-Expires=60")
    'https://b.s3.amazonaws.com/k.tif?<redacted>'
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: keep what cannot hold a secret
        head = re.split(r"[?#]", url, maxsplit=1)[0]
        return re.sub(r"//[^/]*@", "//", head) + ("?<redacted>" if head != url else "")
    # Not _hrefs.is_local: this asks whether urlsplit found anything to scrub, and
    # keeps messages as they were for drive-letter paths and upper-case FILE:// URLs.
    if not parts.scheme or parts.scheme == "file":
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        names = {k.lower() for k, _ in parse_qsl(query, keep_blank_values=True)}
        if any(n in _SECRET_PARAMS or n.startswith(_SECRET_PREFIXES) for n in names):
            query = "<redacted>"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that :func:`redact_url` hides: user info and a signed query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [p for p in (parts.username, parts.password) if p]
    if parts.query and redact_url(url).endswith("?<redacted>"):
        found.append(parts.query)
        found.extend(v for _, v in parse_qsl(parts.query, keep_blank_values=True) if v)
    return found


def scrub(text: str, url: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` (a third party's message about ``url``) without any secret in it.

    ``url`` itself becomes :func:`redact_url` of it, then every secret part of
    it (user info, the values of a signed query) and every string of
    ``secrets`` (header values, keys) found anywhere in ``text`` becomes
    ``<redacted>``: libraries print URLs in forms of their own (normalized,
    percent-encoded), so replacing the URL alone is not enough.

    Parameters
    ----------
    text
        The message to clean.
    url
        The URL the message is about.
    secrets
        Further values that must not be shown.

    Returns
    -------
    str
        ``text`` with no secret of ``url`` or ``secrets`` left in it.
    """
    text = text.replace(url, redact_url(url))
    # Longest first, so a value is not left half-replaced by a shorter one inside it.
    found = {s for s in [*_url_secrets(url), *secrets] if len(s) >= 3}
    values = sorted(found, key=len, reverse=True)
    for value in values:
        for form in {value, quote(value, safe=""), quote(value, safe="/:=&")}:
            text = text.replace(form, "<redacted>")
    return text


def describe_range(start: int, end: int) -> str:
    """Render ``[start, end)`` as the inclusive HTTP form ``bytes a-b`` used in messages."""
    return f"bytes {start}-{end - 1}" if end > start else f"empty range at {start}"


def not_found(url: str) -> ObjectNotFoundError:
    """Build the error for a missing object (HTTP 404, S3 NoSuchKey/NoSuchBucket)."""
    return ObjectNotFoundError(
        f"{redact_url(url)} does not exist (HTTP 404); check the URL or path, and that the "
        "collection was built from the same location"
    )


def permission_denied(url: str, status: int | str, *, s3: bool = False) -> PermissionDeniedError:
    """Build the error for a refused request (HTTP 401/403, S3 AccessDenied)."""
    hint = (
        "check the credentials (storage_options key/secret/token or profile), whether the "
        "bucket needs requester_pays=True, and anon=True only for public buckets"
        if s3
        else "check the credentials or headers (storage_options['headers']), and for signed "
        "URLs whether the signature has expired"
    )
    return PermissionDeniedError(f"access to {redact_url(url)} was refused ({status}); {hint}")


async def retry_async(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    url: str,
    what: str,
) -> T:
    """Run ``attempt`` until it succeeds, retrying transient faults with backoff.

    Parameters
    ----------
    attempt
        Coroutine function doing one try; raises :class:`TransientError` or
        :class:`TimeoutError` for retryable faults.
    policy
        Attempts, backoff and per-attempt timeout.
    url
        The object's URL or path (redacted in messages).
    what
        The request in words, e.g. ``"bytes 0-1023"``.

    Returns
    -------
    The value of the first successful attempt.

    Raises
    ------
    ReadFailedError
        When every attempt failed transiently; names the URL, the range and the last cause.
    """
    for n in range(policy.max_attempts):
        retry_after: float | None = None
        try:
            if policy.timeout is None:
                return await attempt()
            async with asyncio.timeout(policy.timeout):
                return await attempt()
        except TransientError as e:
            cause, retry_after = e.cause, e.retry_after
        except TimeoutError:
            cause = f"no complete response within the {policy.timeout:g} s timeout"
        if n + 1 == policy.max_attempts:
            break
        record_retry()
        delay = policy.delay(n, retry_after)
        log.debug(
            "retrying %s of %s in %.2f s (attempt %d of %d): %s",
            what,
            redact_url(url),
            delay,
            n + 2,
            policy.max_attempts,
            cause,
        )
        await asyncio.sleep(delay)
    raise ReadFailedError(
        f"reading {what} of {redact_url(url)} failed after {policy.max_attempts} attempt(s); "
        f"last cause: {cause}"
    )
