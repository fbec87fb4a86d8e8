"""Requested bands -> a collection's assets, through a data source; shared by engine and helpers.

A data source (named, given, or inferred from the collection's STAC ids and
hrefs) maps band codes to asset keys (``B04`` -> ``red``), rewrites hrefs
when reads are planned, and signs requests at read time (the signer goes
into :class:`~xarray_rasteret._read.tasks.ReadOptions`, never into hrefs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from .. import data_sources
from .._arguments import checked_bands
from .._read.tasks import ReadOptions
from .._types import RasterSource
from ..collection import Collection
from ..data_sources import DataSource

__all__ = ["band_sources", "bands_to_load", "resolve_bands", "signed_options"]


def resolve_bands(
    collection: Collection, bands: Sequence[str], data_source: str | DataSource | None
) -> tuple[dict[str, str], DataSource | None]:
    """Map each requested band (code or asset key) to the collection's asset key.

    Returns
    -------
    tuple of (dict, DataSource or None)
        ``{requested band: asset key}`` and the data source used (None if none).

    Raises
    ------
    BandNotFoundError
        For a band the collection has neither as an asset nor by the source's code.
    """
    names = checked_bands(bands)
    if names is None:
        raise ValueError("bands is required: name the bands to read, e.g. bands=['B04']")
    source = data_sources.resolve(
        data_source, _collection_ids(collection), _sample_hrefs(collection)
    )
    return data_sources.assets_for(names, list(collection.bands), source), source


def bands_to_load(
    bands: Sequence[str] | None, data_source: str | DataSource | None
) -> tuple[str, ...] | None:
    """The asset keys whose metadata to load for ``bands`` (codes mapped by a named source).

    A band the collection turns out not to have makes the load read every
    band's metadata (see :func:`~xarray_rasteret.collection.scan.columns_for`),
    so inference and the error message still see them all.
    """
    if bands is None:
        return None
    if data_source is None:
        return tuple(bands)
    source = data_sources.resolve(data_source)
    assert source is not None
    return tuple(dict.fromkeys(source.band_map.get(b, b) for b in bands))


def _collection_ids(collection: Collection) -> list[str]:
    if "collection" in collection.table.column_names:
        return [str(v) for v in set(collection.table.column("collection").to_pylist())]
    return []


def _sample_hrefs(collection: Collection) -> list[str]:
    """Up to 20 hrefs of the first band, to recognise the data source by."""
    bands = collection.bands
    return [h for h in collection.hrefs(bands[0])[:20] if h] if bands else []


def band_sources(
    collection: Collection, assets: dict[str, str], source: DataSource | None
) -> dict[str, list[RasterSource]]:
    """Each requested band's sources, one per record, hrefs rewritten by the data source."""
    per_band = {band: collection.sources(asset) for band, asset in assets.items()}
    if source is not None and source.rewrite_href is not None:
        rewrite = source.rewrite_href
        per_band = {
            b: [replace(s, href=rewrite(s.href)) for s in srcs] for b, srcs in per_band.items()
        }
    return per_band


def signed_options(
    options: ReadOptions, sign: Callable[[str], str] | None, source: DataSource | None
) -> ReadOptions:
    """``options`` with the signer: ``sign`` if given, else the data source's (if any)."""
    chosen = sign if sign is not None else (source.sign if source is not None else None)
    if chosen is not None and not callable(chosen):
        raise TypeError(
            f"sign must be a callable href -> signed href, not {type(chosen).__name__}"
        )
    return options if chosen is None else replace(options, sign=chosen)
