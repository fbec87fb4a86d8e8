"""Read the body of a range answer without ever holding more than the range asked.

A server may ignore ``Range`` (``200`` with the whole object, perhaps without
end), answer another range than the one asked, or send a body longer or shorter
than its headers say. :func:`range_answer` reads at most the bytes asked (plus
one to tell a body that runs on), in chunks, and checks what arrived against
``Content-Range`` and ``Content-Length`` before trusting a byte of it:

* ``206``: the ``Content-Range`` must start where asked and the body must be as
  long as it says; a range shorter than asked is a transient fault (retried),
  any other mismatch is refused with a :class:`~xarray_rasteret.errors.ReadFailedError`.
* ``200`` (``Range`` ignored): the range is cut out of the stream, the bytes
  before it are read and dropped, and the connection is closed after it; a
  range more than :data:`MAX_SKIP` bytes in is refused rather than downloaded
  through.

A body that is not read to its end closes its connection, so no stray bytes
are left for the next request on it.
"""

from __future__ import annotations

import re

import aiohttp

from ..errors import ReadFailedError, TruncatedFileError
from ._checks import normalize_etag
from ._retry import TransientError, describe_range, redact_url

__all__ = [
    "ERROR_BODY_LIMIT",
    "MAX_SKIP",
    "drain",
    "parse_content_range",
    "range_answer",
]

MAX_SKIP = 16 << 20
"""Bytes of a ``200`` answer (a server ignoring ``Range``) read and dropped to reach a range."""

ERROR_BODY_LIMIT = 64 << 10
"""Bytes of an error or HEAD-like answer read, at most (an S3 error document is < 1 KiB)."""

_CHUNK = 64 << 10
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")

_FIX = (
    "the server does not answer byte-range requests correctly; read the file from a "
    "server that does, or copy it to local disk"
)


def parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """Return ``(first, last, total)`` of a ``Content-Range`` header (None where absent)."""
    if not value:
        return None, None, None
    m = _CONTENT_RANGE.fullmatch(value.strip())
    if m is None:
        return None, None, None
    first, last, total = m.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total not in (None, "*") else None,
    )


async def _take(resp: aiohttp.ClientResponse, n: int) -> bytearray:
    """Read up to ``n`` bytes of the body (fewer only if it ends first)."""
    out = bytearray()
    while len(out) < n:
        chunk = await resp.content.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return out


async def _skip(resp: aiohttp.ClientResponse, n: int) -> int:
    """Read and drop up to ``n`` bytes of the body; return how many there were."""
    done = 0
    while done < n:
        chunk = await resp.content.read(min(_CHUNK, n - done))
        if not chunk:
            break
        done += len(chunk)
    return done


def _finish(resp: aiohttp.ClientResponse) -> None:
    """Close the connection of an answer whose body was not read to its end."""
    if not resp.content.at_eof():
        resp.close()


async def drain(resp: aiohttp.ClientResponse, limit: int = ERROR_BODY_LIMIT) -> bytes:
    """Return the first ``limit`` bytes of a body; the connection is kept only if that was all.

    For error documents and HEAD-like answers, whose bodies are read for a code
    or not at all: an endless one costs ``limit`` bytes, not the process.
    """
    body = bytes(await _take(resp, limit))
    _finish(resp)
    return body


def _content_length(resp: aiohttp.ClientResponse) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        length = -1
    return length if length >= 0 else None


async def _partial(resp: aiohttp.ClientResponse, url: str, start: int, end: int) -> tuple[
    bytes, int | None
]:
    """Body and object size of a ``206`` answer to ``[start, end)``, checked against its headers."""
    what = describe_range(start, end)
    header = resp.headers.get("Content-Range")
    first, last, total = parse_content_range(header)
    if first is None or last is None or last < first or (total is not None and last >= total):
        resp.close()
        shown = "no Content-Range" if header is None else f"Content-Range {header[:80]!r}"
        raise ReadFailedError(
            f"{redact_url(url)} answered {what} with HTTP 206 and {shown}, which names no "
            f"valid byte range; {_FIX}"
        )
    if first != start:
        resp.close()
        raise ReadFailedError(
            f"{redact_url(url)} answered {what} with bytes {first}-{last} (Content-Range); {_FIX}"
        )
    sent = last + 1 - first
    length = _content_length(resp)
    if length is not None and length != sent:
        resp.close()
        raise ReadFailedError(
            f"{redact_url(url)} answered {what} with bytes {first}-{last} ({sent} bytes) but a "
            f"Content-Length of {length}; {_FIX}"
        )
    wanted = min(end, last + 1) - start
    body = await _take(resp, wanted + (wanted == sent))  # one more: does it run on?
    if len(body) > sent:
        resp.close()
        raise ReadFailedError(
            f"{redact_url(url)} sent more than the {sent} bytes of its Content-Range "
            f"(bytes {first}-{last}) for {what}; {_FIX}"
        )
    _finish(resp)
    if len(body) < wanted:
        raise TransientError(f"short read: {len(body)} of {wanted} bytes")
    if last + 1 < end and (total is None or last + 1 < total):
        # Not the end of the object: the server sent less than asked (a capped range).
        raise TransientError(f"the server sent bytes {first}-{last} only")
    return bytes(body), total


async def _whole(resp: aiohttp.ClientResponse, url: str, start: int, end: int) -> tuple[
    bytes, int | None
]:
    """Cut ``[start, end)`` out of a ``200`` answer (the whole object), reading no further."""
    length = _content_length(resp)
    if length is not None and start >= length:
        resp.close()
        raise TruncatedFileError(
            f"{describe_range(start, end)} starts past the end of {redact_url(url)} "
            f"({length} bytes)"
        )
    if start > MAX_SKIP:
        resp.close()
        of = f" of {length} bytes" if length is not None else ""
        raise ReadFailedError(
            f"{redact_url(url)} ignores Range requests (it answered {describe_range(start, end)} "
            f"with HTTP 200 and the whole object{of}); reading a range {start} bytes in "
            f"would download everything before it for every request. Serve the file from a "
            f"server that supports range requests, or copy it to local disk"
        )
    skipped = await _skip(resp, start)
    body = await _take(resp, end - start)
    at_end = resp.content.at_eof()
    _finish(resp)
    if skipped < start:
        raise TruncatedFileError(
            f"{describe_range(start, end)} starts past the end of {redact_url(url)} "
            f"({skipped} bytes)"
        )
    size = length if length is not None else (start + len(body) if at_end else None)
    return bytes(body), size


async def range_answer(
    resp: aiohttp.ClientResponse, start: int, end: int, url: str
) -> tuple[bytes, int | None, str | None] | None:
    """``(body, object size, etag)`` of a 206 or 200 answer to ``[start, end)``, else None.

    Parameters
    ----------
    resp
        The answer, its body not read yet.
    start, end
        The range asked (``end`` exclusive).
    url
        The object, named (redacted) in messages.

    Returns
    -------
    tuple or None
        The bytes (clamped where the object ends), the object's size (None when
        the answer does not tell it) and ETag; None for any other status.

    Raises
    ------
    TransientError
        The body is shorter than announced, or the range shorter than asked.
    ReadFailedError
        The answer names another range, or its body runs past its headers, or
        the server ignores ``Range`` and the range lies past :data:`MAX_SKIP`.
    TruncatedFileError
        A ``200`` answer whose object ends before ``start``.
    """
    if resp.status == 206:
        body, total = await _partial(resp, url, start, end)
    elif resp.status == 200:
        body, total = await _whole(resp, url, start, end)
    else:
        return None
    return body, total, normalize_etag(resp.headers.get("ETag"))
