"""Whole small objects (a collection file, a STAC items file) through the stores.

Ranged reads are the rule; a few inputs are read whole. The size is asked first,
so an object larger than the caller allows is refused before any byte of it is
held.
"""

from __future__ import annotations

from typing import Any

from ..errors import RasteretError
from ._checks import object_info
from ._retry import redact_url
from ._router import resolve_store

__all__ = ["read_object_async"]


async def read_object_async(
    href: str,
    *,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
    max_bytes: int = 2**30,
) -> bytes:
    """The bytes of the object at ``href`` (at most ``max_bytes``).

    Raises
    ------
    RasteretError
        If the object is larger than ``max_bytes``, or its store can neither
        tell its size nor read it whole.
    """
    store, key = resolve_store(href, storage_options=storage_options, backend=backend)
    if not hasattr(store, "head_async"):
        get = getattr(store, "get_async", None)
        if get is None:
            raise RasteretError(
                f"cannot read {redact_url(href)!r} whole: its store has neither "
                "head_async nor get_async"
            )
        result = await get(key)  # obspec GetAsync: no size to check before
        data = bytes(await result.bytes_async())
    else:
        size = (await object_info(store, key)).size
        if size > max_bytes:
            raise RasteretError(
                f"{redact_url(href)!r} is {size} bytes, more than the {max_bytes} read whole; "
                "is it the file you meant?"
            )
        data = bytes(memoryview(await store.get_range_async(key, start=0, end=size)))
    if len(data) > max_bytes:
        raise RasteretError(
            f"{redact_url(href)!r} holds more than the {max_bytes} bytes read whole"
        )
    return data
