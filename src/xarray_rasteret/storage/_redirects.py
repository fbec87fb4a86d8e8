"""Follow HTTP redirects ourselves, so credentials never travel to another origin.

aiohttp follows redirects with the request's headers, dropping only
``Authorization`` when the origin changes: a custom auth header from
``storage_options["headers"]`` (``X-Api-Key``, ``Cookie``, ``x-amz-*``, ...)
would be sent to whatever host a redirect names. Here every hop is a request
of its own: to the origin of the URL asked (scheme, host and port) all headers
go; to any other origin only :data:`SAFE_HEADERS`. A ``user:password@`` in the
URL stays with the URL asked (aiohttp sends it only to the URL it is part of).
A ``login`` (the netrc logins of :mod:`._netrc`) adds an ``Authorization`` to
the hops whose host it names, and to no other. Cookies a hop sets (a login
session) go back only where the session's cookie jar sends them: to the host
that set them (RFC 6265; aiohttp keeps none from hosts named by IP address).
More than :data:`MAX_REDIRECTS` hops, a redirect without a usable ``Location``,
or one to a scheme other than http(s), is a
:class:`~xarray_rasteret.errors.ReadFailedError` naming the redacted URL.

:func:`client_error` turns what aiohttp raises into the package's errors, with
every URL in its message redacted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from ..errors import ReadFailedError
from ._bodies import drain
from ._retry import TransientError, redact_url, scrub

__all__ = ["MAX_REDIRECTS", "SAFE_HEADERS", "TRANSIENT_AIOHTTP", "client_error", "follow"]

MAX_REDIRECTS = 10
"""Hops followed before a read fails (browsers allow about 20; byte ranges need few)."""

SAFE_HEADERS = frozenset({
    "range",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "cache-control",
    "if-match",
    "if-none-match",
    "if-range",
})
"""Request headers (lower case) sent to an origin other than the one asked: none is a credential."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# Faults of the connection or the body, all worth another attempt.
TRANSIENT_AIOHTTP = (
    aiohttp.ClientConnectionError,  # refused, reset, server disconnected
    aiohttp.ClientPayloadError,  # body shorter than Content-Length, broken chunking
)


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme.lower(), (url.host or "").lower(), url.port


def _show_location(location: str) -> str:
    """A ``Location`` fit for a message: redacted and cut short."""
    return redact_url(location)[:100]


def _redirect_target(current: URL, location: str | None, url: str, status: int) -> URL:
    """The URL a redirect names, resolved against ``current``; refused if unusable."""
    shown = redact_url(url)
    if not location:
        raise ReadFailedError(
            f"{shown} answered HTTP {status} (a redirect) without a Location header; "
            "check the URL, or read the file from where it is actually served"
        )
    try:
        target = current.join(URL(location)).with_fragment(None)
        host = target.host
    except (ValueError, UnicodeError, TypeError):
        target, host = None, None
    if target is None or target.scheme not in ("http", "https") or not host:
        raise ReadFailedError(
            f"{shown} redirected to an unusable Location ({_show_location(location)!r}: "
            "not an http(s) URL); check the URL, or read the file from where it is actually served"
        )
    return target


@asynccontextmanager
async def follow(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    method: str = "GET",
    login: Callable[[URL], str | None] | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send ``method url`` and follow redirects; yield the final, non-redirect answer.

    Parameters
    ----------
    session
        The session to send with (its own default headers go everywhere: keep
        credentials out of them).
    url
        The URL asked.
    headers
        All request headers; across origins only :data:`SAFE_HEADERS` of them.
    method
        The HTTP method (redirects are followed with the same one; 303 with GET).
    login
        The ``Authorization`` value for a hop's URL, or None (asked for each hop
        that carries no ``Authorization`` of its own and no user info).

    Raises
    ------
    ReadFailedError
        More than :data:`MAX_REDIRECTS` redirects, or a redirect to nowhere usable.
    aiohttp.ClientError
        As the request raises it (see :func:`client_error`).
    """
    home = URL(url)
    current = home
    safe = {k: v for k, v in headers.items() if k.lower() in SAFE_HEADERS}
    for _ in range(MAX_REDIRECTS + 1):
        sent = headers if _origin(current) == _origin(home) else safe
        if login is not None and current.user is None:
            value = None if any(k.lower() == "authorization" for k in sent) else login(current)
            sent = sent if value is None else {**sent, "Authorization": value}
        resp = await session.request(method, current, headers=sent, allow_redirects=False)
        try:
            if resp.status not in _REDIRECTS:
                yield resp
                return
            location = resp.headers.get("Location")
            await drain(resp)
        finally:
            resp.release()
        if resp.status == 303:
            method = "GET"
        current = _redirect_target(current, location, url, resp.status)
    raise ReadFailedError(
        f"{redact_url(url)} redirected more than {MAX_REDIRECTS} times (a redirect loop?); "
        "check the URL, or read the file from where it is actually served"
    )


def client_error(
    error: Exception, url: str, what: str, secrets: Iterable[str] = (), shown: str | None = None
) -> Exception:
    """The package's error for an exception aiohttp (or yarl) raised while reading ``url``.

    Parameters
    ----------
    error
        An :class:`aiohttp.ClientError`, or a ``ValueError`` of an unparseable URL.
    url
        The URL asked (redacted in the message).
    what
        The request in words, e.g. ``"bytes 0-1023"``.
    secrets
        Values to keep out of the message (request header values).
    shown
        How the object is named in the message (``gs://bucket/key``); default
        :func:`~._retry.redact_url` of ``url``.

    Returns
    -------
    Exception
        A :class:`TransientError` for connection and body faults (retried), else a
        :class:`~xarray_rasteret.errors.ReadFailedError`; neither quotes the raw URL.
    """
    shown = redact_url(shown or url)
    if isinstance(error, TRANSIENT_AIOHTTP):
        return TransientError(f"{type(error).__name__}: {scrub(str(error), url, secrets)}")
    if isinstance(error, aiohttp.InvalidURL | UnicodeError):
        return ReadFailedError(f"{shown} is not a valid URL; check the href")
    if isinstance(error, ValueError) and not isinstance(error, aiohttp.ClientError):
        # yarl's and aiohttp's checks of the request: a bad port, user info in the URL
        # and an Authorization header both, a header value with a newline.
        words = scrub(" ".join(str(error).split())[:200], url, secrets)
        return ReadFailedError(
            f"cannot request {what} of {shown}: {words}; check the href and "
            "storage_options['headers']"
        )
    if isinstance(error, aiohttp.ClientResponseError):
        # aiohttp's str() of these quotes the full URL; its .message does not.
        words = scrub(" ".join(str(error.message).split())[:200], url, secrets)
        return ReadFailedError(
            f"reading {what} of {shown} failed: the server's answer is not valid HTTP "
            f"({words}); check the URL, or read the file from a server that speaks HTTP/1.1"
        )
    return ReadFailedError(
        f"reading {what} of {shown} failed: {type(error).__name__}: "
        f"{scrub(' '.join(str(error).split())[:300], url, secrets)}"
    )
