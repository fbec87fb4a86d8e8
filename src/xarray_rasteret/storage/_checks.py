"""Range arguments, object size/ETag, and detecting objects changed since indexing.

At build time :func:`object_info` records each file's size and ETag (one
request: a ranged GET of one byte for HTTP, ``HeadObject`` for S3, ``stat``
locally). At read time :func:`get_range_checked` reads a range and compares the
size and ETag that the very same response carries (``Content-Range: bytes
a-b/TOTAL`` and ``ETag``) with the indexed ones: staleness is detected without
any extra request. Pass ``size=None`` to skip the check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import Buffer

from ..errors import ObjectChangedError, TruncatedFileError
from ._retry import describe_range, redact_url

__all__ = [
    "ObjectInfo",
    "check_unchanged",
    "get_range_checked",
    "head_dict",
    "normalize_etag",
    "object_info",
    "range_end",
    "range_ends",
]


@dataclass(frozen=True)
class ObjectInfo:
    """What identifies one version of an object."""

    size: int
    """Length in bytes."""
    etag: str | None
    """Entity tag, quotes and weak prefix removed; None where the store has none (local files)."""


def range_end(start: int, end: int | None, length: int | None) -> int:
    """Return the exclusive end of a range given as ``end`` or ``length``."""
    if end is None:
        if length is None:
            raise ValueError("a byte range needs end or length")
        end = start + length
    if start < 0 or end < start:
        raise ValueError(f"invalid byte range [{start}, {end})")
    return end


def range_ends(
    starts: Sequence[int], ends: Sequence[int] | None, lengths: Sequence[int] | None
) -> list[int]:
    """Return the exclusive ends of several ranges given as ``ends`` or ``lengths``."""
    if ends is None:
        if lengths is None:
            raise ValueError("byte ranges need ends or lengths")
        return [range_end(s, None, n) for s, n in zip(starts, lengths, strict=True)]
    return [range_end(s, e, None) for s, e in zip(starts, ends, strict=True)]


def normalize_etag(etag: str | None) -> str | None:
    """Strip the weak prefix and quotes so ETags from HEAD, GET and S3 compare equal."""
    if not etag:
        return None
    etag = etag.strip()
    if etag.startswith(("W/", "w/")):
        etag = etag[2:]
    return etag.strip('"') or None


def head_dict(path: str, size: int, etag: str | None) -> dict[str, Any]:
    """Build the obspec ``ObjectMeta``-shaped dict our stores' ``head_async`` returns."""
    return {"path": path, "size": size, "e_tag": etag, "last_modified": None, "version": None}


def check_unchanged(
    url: str,
    *,
    expected_size: int,
    expected_etag: str | None,
    size: int | None,
    etag: str | None,
) -> None:
    """Raise if an object's size or ETag differs from the indexed one.

    Parameters
    ----------
    url
        The object (redacted in the message).
    expected_size, expected_etag
        Recorded when the collection was built; an ETag of None is not compared.
    size, etag
        Seen in the response now; None when the response did not say.

    Raises
    ------
    ObjectChangedError
        Naming the URL and what changed.
    """
    changes = []
    if size is not None and size != expected_size:
        changes.append(f"size {expected_size} -> {size} bytes")
    want, got = normalize_etag(expected_etag), normalize_etag(etag)
    if want is not None and got is not None and want != got:
        changes.append(f"ETag {want!r} -> {got!r}")
    if changes:
        raise ObjectChangedError(
            f"{redact_url(url)} changed since the collection was built ({'; '.join(changes)}); "
            "rebuild the collection to index the new version, or pass check_unchanged=False "
            "(xr.open_dataset(..., engine='rasteret', check_unchanged=False)) to read it anyway"
        )


def check_within(url: str, start: int, end: int, size: int) -> None:
    """Raise :class:`TruncatedFileError` if ``[start, end)`` reaches past ``size`` bytes."""
    if end > size:
        raise TruncatedFileError(
            f"{describe_range(start, end)} lies past the end of {redact_url(url)} "
            f"({size} bytes): the file is shorter than its header says"
        )


async def object_info(store: Any, path: str) -> ObjectInfo:
    """Return the size and ETag of ``path`` in ``store`` (one request).

    Parameters
    ----------
    store
        Any store with obspec's ``head_async`` (ours and obstore's).
    path
        The path as returned by :func:`~xarray_rasteret.storage.resolve_store`.

    Returns
    -------
    ObjectInfo
        ``size`` and ``etag`` (None for local files).

    Examples
    --------
    >>> store, path = resolve_store("https://example.com/a.tif")  # doctest: +SKIP
    >>> await object_info(store, path)  # doctest: +SKIP
    ObjectInfo(size=1048576, etag='5f2b-...')
    """
    inner = getattr(store, "inner", store)  # see through CountingStore
    if not hasattr(inner, "head_async"):
        raise TypeError(f"{type(store).__name__} cannot report object size (no head_async)")
    meta = await inner.head_async(path)
    # obspec's ObjectMeta is a dict; other stores answer with an object.
    get = meta.get if isinstance(meta, Mapping) else lambda k: getattr(meta, k, None)
    size = get("size")
    if size is None:
        raise TypeError(f"{type(store).__name__}.head_async gave no size for {redact_url(path)}")
    return ObjectInfo(int(size), normalize_etag(get("e_tag") or get("etag")))


async def get_range_checked(
    store: Any,
    path: str,
    *,
    start: int,
    end: int,
    size: int | None,
    etag: str | None = None,
) -> Buffer:
    """Read ``[start, end)`` and verify the object is the one indexed.

    Our stores compare the ``Content-Range`` total and ``ETag`` of the same
    response (no extra request). Other stores get a plain read and a length
    check only.

    Parameters
    ----------
    store, path
        As returned by :func:`~xarray_rasteret.storage.resolve_store`.
    start, end
        The byte range, ``end`` exclusive.
    size, etag
        Recorded at build time; ``size=None`` skips every check.

    Returns
    -------
    Buffer
        Exactly ``end - start`` bytes.

    Raises
    ------
    ObjectChangedError
        The size or ETag differ from the recorded ones.
    TruncatedFileError
        The range lies past the recorded end of the object.
    """
    if size is None:
        data: Buffer = await store.get_range_async(path, start=start, end=end)
        return data
    check_within(path, start, end, size)
    if hasattr(store, "get_range_checked_async"):
        data = await store.get_range_checked_async(path, start=start, end=end, size=size, etag=etag)
        return data
    data = await store.get_range_async(path, start=start, end=end)
    if len(memoryview(data)) != end - start:
        raise ObjectChangedError(
            f"{redact_url(path)} returned {len(memoryview(data))} bytes for "
            f"{describe_range(start, end)}; it is shorter than when the collection was built: "
            "rebuild the collection, or pass check_unchanged=False to read it anyway"
        )
    return data
