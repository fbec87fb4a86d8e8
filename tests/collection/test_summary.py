"""The collection's repr, its notebook HTML, and what they cost on a lazy collection."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

import xarray_rasteret as xrr
from xarray_rasteret.collection.summary import band_facts

B04 = "    B04: uint16, 512x512 px at 10 x 10 m, nodata 0, tiles 256x256, 1 overview, deflate"


def test_repr_lists_extent_time_crs_and_band_facts(sample_folder: Path) -> None:
    coll = xrr.load(sample_folder / "s2.parquet")
    lines = repr(coll).splitlines()
    assert lines[0] == "<xarray_rasteret.Collection 's2.parquet': 4 records>"
    assert "  extent:  16.271013, 45.099753, 16.337148, 45.146573 (lon/lat, OGC:CRS84)" in lines
    assert "  time:    2024-05-03T10:00:12 .. 2024-05-18T10:00:12" in lines
    assert "  crs:     EPSG:32633 (4)" in lines
    assert B04 in lines


def test_repr_of_a_lazy_collection_reads_one_record(sample_folder: Path) -> None:
    coll = xrr.load(sample_folder / "s2.parquet")
    assert coll._table is None  # opened lazily
    repr(coll)
    coll._repr_html_()
    assert coll._table is None  # the tile tables of every record were not read


def test_html_repr_has_the_same_facts_escaped(sample_folder: Path) -> None:
    coll = xrr.load(sample_folder / "s2.parquet")
    coll.name = "<b>mine</b>"
    text = coll._repr_html_()
    assert "&lt;b&gt;mine&lt;/b&gt;" in text and "<b>mine</b>" not in text
    facts = band_facts(coll.sources("B04")[0])
    for value in facts.values():
        assert f"<td style='text-align:left'>{value}</td>" in text
    assert "EPSG:32633 (4)" in text


def test_repr_of_an_empty_collection_and_of_records_without_metadata() -> None:
    empty = xrr.Collection(pa.table({"id": pa.array([], pa.string())}))
    assert repr(empty).splitlines()[:3] == [
        "<xarray_rasteret.Collection: 0 records>",
        "  records: 0",
        "  time:    none",
    ]
    assets = pa.array([{"red": {"href": "a.tif"}}])
    bare = xrr.Collection(pa.table({"id": ["a"], "assets": assets}))
    assert "  bands:   red" in repr(bare).splitlines()
    assert "  time:    none (1 record without a time)" in repr(bare).splitlines()
    assert "<p>bands: red</p>" in bare._repr_html_()
