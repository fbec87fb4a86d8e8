"""Turn what a user passes (path, URL, Collection) into a Collection."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .._hrefs import TIFF_SUFFIXES
from ..collection import Collection, load
from ._stac import ITEM_SUFFIXES
from .builder import build

__all__ = ["as_collection"]


def as_collection(
    obj: Any,
    *,
    bands: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> Collection:
    """Return ``obj`` as a Collection: a Collection as is, a GeoTIFF as a one-record one.

    Parameters
    ----------
    obj
        A Collection; the path/URL of a collection Parquet file or a GeoTIFF; or a
        Dataset opened with the rasteret engine (its collection, after selection).
    bands
        For a collection file: read only these bands' metadata (see
        :func:`~xarray_rasteret.load`). A Collection or Dataset is returned whole.
    storage_options, backend
        How to reach remote objects.

    Returns
    -------
    Collection
    """
    if isinstance(obj, Collection):
        return obj
    opened = getattr(obj, "encoding", {}).get("rasteret_collection")
    if isinstance(opened, Collection):
        return opened
    if isinstance(obj, os.PathLike):
        obj = os.fspath(obj)
    if not isinstance(obj, str):
        raise TypeError(
            "expected a Collection, or the path/URL of a collection or a GeoTIFF; "
            f"got {type(obj).__name__}"
        )
    stem = obj.split("?", 1)[0].lower()
    if stem.endswith(ITEM_SUFFIXES):
        raise ValueError(
            f"{obj!r} looks like STAC items, not a collection: build one first, e.g. "
            f"xarray_rasteret.build({obj!r}).to_parquet('collection.parquet'), then open "
            "that (or pass the built Collection itself)"
        )
    if stem.endswith(TIFF_SUFFIXES):
        return build([obj], storage_options=storage_options, backend=backend)
    return load(obj, bands=bands, storage_options=storage_options, backend=backend)
