"""What a collection holds, in a few lines: its repr, its notebook HTML and ``info``.

The per band facts (dtype, size, resolution, nodata, tiling, overviews, codec) are
those of the first record: reading every record's tile tables to describe the
collection would cost what a read does. The extent, time range and CRS counts
cover every record, from the light columns only.
"""

from __future__ import annotations

import html
from typing import Protocol

import numpy as np

from .._read.codecs import COMPRESSION_NAMES
from .._types import RasterSource
from ..geo.crs import unit_abbreviation


class Collection(Protocol):
    """What a summary reads of a :class:`~xarray_rasteret.Collection`.

    A protocol, as the Collection imports this module: the import goes one way.
    """

    name: str | None

    def __len__(self) -> int: ...
    @property
    def bands(self) -> list[str]: ...
    @property
    def geometries(self) -> np.ndarray: ...
    @property
    def datetimes(self) -> np.ndarray: ...
    def crs_counts(self) -> dict[str, int]: ...
    def user_columns(self) -> list[str]: ...
    def sources(self, band: str) -> list[RasterSource]: ...
    def _first_record(self) -> Collection: ...

__all__ = ["band_facts", "summary_html", "summary_rows", "summary_text"]


def _number(value: float) -> str:
    return f"{value:g}"


def band_facts(source: RasterSource) -> dict[str, str]:
    """The facts of one band of one record, as short labelled strings.

    Examples
    --------
    >>> band_facts(coll.sources("B04")[0])["tiling"]  # doctest: +SKIP
    'tiles 512x512'
    """
    full = source.levels[0]
    overviews = len(source.levels) - 1
    codec = source.encoding.compression
    return {
        "dtype": str(source.dtype),
        "size": f"{full.width}x{full.height} px",
        "resolution": f"{_number(abs(source.transform.a))} x "
        f"{_number(abs(source.transform.e))} {unit_abbreviation(source.crs)}".rstrip(),
        "nodata": "none" if source.nodata is None else _number(source.nodata),
        "tiling": f"tiles {full.tile_width}x{full.tile_height}" if full.tiled else "strips",
        "overviews": f"{overviews} overview{'' if overviews == 1 else 's'}",
        "codec": COMPRESSION_NAMES.get(codec, f"compression {codec}"),
    }


def _first_bands(collection: Collection) -> dict[str, dict[str, str]]:
    first = collection._first_record()
    out = {}
    for band in first.bands:
        try:
            out[band] = band_facts(first.sources(band)[0])
        except (KeyError, ValueError, LookupError):  # a band without header metadata
            continue
    return out


def summary_rows(collection: Collection) -> list[tuple[str, str]]:
    """``(label, value)`` rows: records, extent, time range, CRSs, extra columns."""
    import shapely

    rows = [("records", str(len(collection)))]
    if len(collection):
        bounds = shapely.total_bounds(collection.geometries)
        if np.isfinite(bounds).all():
            x0, y0, x1, y1 = bounds
            rows.append(("extent", f"{x0:.6f}, {y0:.6f}, {x1:.6f}, {y1:.6f} (lon/lat, OGC:CRS84)"))
    t = collection.datetimes
    known = t[~np.isnat(t)]
    span = (
        f"{np.datetime_as_string(known.min(), 's')} .. {np.datetime_as_string(known.max(), 's')}"
        if len(known)
        else "none"
    )
    n = len(t) - len(known)
    missing = f" ({n} record{'' if n == 1 else 's'} without a time)" if n else ""
    rows.append(("time", span + missing))
    counts = collection.crs_counts()
    rows.append(("crs", ", ".join(f"{k} ({v})" for k, v in counts.items()) or "none"))
    if collection.user_columns():
        rows.append(("columns", ", ".join(collection.user_columns())))
    return rows


def _title(collection: Collection) -> str:
    label = f" {collection.name!r}" if collection.name else ""
    return f"<xarray_rasteret.Collection{label}: {len(collection)} records>"


def summary_text(collection: Collection) -> str:
    """The plain-text summary (the repr, and ``xarray-rasteret info``)."""
    lines = [_title(collection)]
    lines += [f"  {label + ':':<9}{value}" for label, value in summary_rows(collection)]
    bands = _first_bands(collection)
    names = ", ".join(collection.bands) or "none"
    lines.append("  bands (first record):" if bands else f"  bands:   {names}")
    for band, facts in bands.items():
        lines.append(
            f"    {band}: {facts['dtype']}, {facts['size']} at {facts['resolution']}, "
            f"nodata {facts['nodata']}, {facts['tiling']}, {facts['overviews']}, {facts['codec']}"
        )
    return "\n".join(lines)


def summary_html(collection: Collection) -> str:
    """The notebook summary: the same facts, bands as a table (every value escaped)."""
    esc = html.escape
    rows = "".join(
        f"<tr><th style='text-align:left'>{esc(label)}</th><td style='text-align:left'>"
        f"{esc(value)}</td></tr>"
        for label, value in summary_rows(collection)
    )
    bands = _first_bands(collection)
    table = f"<p>bands: {esc(', '.join(collection.bands) or 'none')}</p>"
    if bands:
        names = ["band", *next(iter(bands.values()))]
        head = "".join(f"<th style='text-align:left'>{esc(n)}</th>" for n in names)
        body = "".join(
            "<tr>" + "".join(
                f"<td style='text-align:left'>{esc(v)}</td>" for v in (band, *facts.values())
            ) + "</tr>"
            for band, facts in bands.items()
        )
        table = f"<p>bands (first record)</p><table><tr>{head}</tr>{body}</table>"
    return (
        f"<div class='xarray-rasteret-collection'><p><b>{esc(_title(collection))}</b></p>"
        f"<table>{rows}</table>{table}</div>"
    )
