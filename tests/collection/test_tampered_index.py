"""A tampered or corrupt index fails at load with a clear error, never reads wrong.

Each case builds a real collection from GeoTIFFs, edits one field of its
``{band}_metadata`` column with pyarrow, writes and loads it, and checks the
error (type and what the message names) or, for nodata the band's type cannot
hold, that the pixels and mask are GDAL's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import rasterio

from cogs import write_tiff
from xarray_rasteret._read.fetch import read_into
from xarray_rasteret._read.tasks import ReadTask
from xarray_rasteret._sync import sync
from xarray_rasteret._types import RasterSource, Window
from xarray_rasteret.collection import Collection, load
from xarray_rasteret.errors import MissingMetadataError, RasteretError, UnsupportedTiffError
from xarray_rasteret.ingest import build

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tampered")
    paths = {"single": str(root / "single.tif"), "planar": str(root / "planar.tif")}
    write_tiff(paths["single"], dtype="uint16", compress="DEFLATE", predictor=2, overviews=(2,))
    write_tiff(paths["planar"], dtype="uint8", count=3, interleave="band", compress="DEFLATE")
    return paths


@pytest.fixture(scope="module")
def single(files: dict[str, str]) -> Collection:
    return build([files["single"]])


@pytest.fixture(scope="module")
def planar(files: dict[str, str]) -> Collection:
    return build([files["planar"]])


def tampered(coll: Collection, band: str, edit: Edit) -> Collection:
    """``coll`` with ``edit`` applied to the first record's ``{band}_metadata`` struct."""
    column = band + "_metadata"
    rows = coll.table.column(column).to_pylist()
    rows[0] = copy.deepcopy(rows[0])
    edit(rows[0])
    index = coll.table.schema.get_field_index(column)
    typ = coll.table.schema.field(column).type
    return Collection(coll.table.set_column(index, column, pa.array(rows, typ)))


def read_all(src: RasterSource) -> list[np.ndarray]:
    """Every level of ``src``, read whole through the read path."""
    tasks = []
    for level, lv in enumerate(src.levels):
        out = np.empty((lv.height, lv.width), src.dtype)
        tasks.append(ReadTask(src, level, Window(0, lv.height, 0, lv.width), out, src.fill))
    sync(read_into(tasks))
    return [t.out for t in tasks]


def set_field(name: str, value: Any, overview: int | None = None) -> Edit:
    def edit(md: dict[str, Any]) -> None:
        target = md if overview is None else md["overviews"][overview]
        target[name] = value(target[name]) if callable(value) else value

    return edit


def loaded(coll: Collection, tmp_path: Path) -> Collection:
    path = tmp_path / "index.parquet"
    coll.to_parquet(path)
    return load(path)


CASES: list[tuple[str, Edit, str]] = [
    ("width 0", set_field("image_width", 0), r"image_width is 0"),
    ("width negative", set_field("image_width", -5), r"image_width is -5"),
    ("height null", set_field("image_height", None), r"image_height is 0"),
    ("width changed", set_field("image_width", 1000), r"tile_offsets, but a 1000 x 200 image"),
    ("tile width 0", set_field("tile_width", 0), r"tile_width is 0"),
    ("tile width 17", set_field("tile_width", 17), r"in 17 x 64 tiles"),
    ("tile width huge", set_field("tile_width", 100_000), r"tile_width is 100000"),
    ("short offsets", set_field("tile_offsets", lambda v: v[:-1]), r"tile_byte_counts"),
    ("negative offset", set_field("tile_offsets", lambda v: [-v[0], *v[1:]]), r"offset -\d+"),
    ("negative count", set_field("tile_byte_counts", lambda v: [-5, *v[1:]]), r"count -5"),
    ("offset 0", set_field("tile_offsets", lambda v: [0, *v[1:]]), r"offset 0 marks a sparse"),
    ("past the end", set_field("tile_offsets", lambda v: [2**40, *v[1:]]), r"past the file"),
    ("huge count", set_field("tile_byte_counts", lambda v: [2**40, *v[1:]]), r"far more than"),
    ("null in offsets", set_field("tile_offsets", lambda v: [None, *v[1:]]), r"offset -1"),
    ("dtype foo", set_field("dtype", "foo"), r"dtype 'foo' is not a NumPy dtype"),
    ("dtype str", set_field("dtype", "U4"), r"dtype 'U4' is not a numeric"),
    ("byte order", set_field("byte_order", "x"), r"byte_order 'x'"),
    ("predictor null", set_field("predictor", None), r"predictor is missing"),
    ("predictor 5", set_field("predictor", 5), r"predictor 5 is unknown"),
    ("predictor 0", set_field("predictor", 0), r"predictor 0 is unknown"),
    ("compression null", set_field("compression", None), r"compression is missing"),
    ("nan transform", set_field("transform", lambda v: [np.nan, *v[1:]]), r"not finite"),
    ("inf transform", set_field("transform", lambda v: [v[0], 0, np.inf, 0, v[4], v[5]]),
     r"not finite"),
    ("zero transform", set_field("transform", [0.0] * 6), r"not finite and invertible"),
    ("huge transform", set_field("transform", lambda v: [1e306, *v[1:]]), r"not finite"),
    ("3 coefficients", set_field("transform", [1.0, 2.0, 3.0]), r"transform has 3 coeff"),
    ("spp 0", set_field("samples_per_pixel", 0), r"samples_per_pixel is 0"),
    ("spp huge", set_field("samples_per_pixel", 70_000), r"samples_per_pixel is 70000"),
    ("band index", set_field("band_index", 4), r"band_index 4 is not a sample"),
    ("overview width 0", set_field("image_width", 0, overview=0), r"overview: image_width"),
    ("overview short", set_field("tile_offsets", lambda v: v[:1], overview=0),
     r"overview: .*tile_byte_counts"),
    ("strips wider", lambda md: md.update(tiled=False), r"strip width 128 is not"),
    ("fill order 3", set_field("fill_order", 3), r"fill_order 3 is unknown"),
    ("fill order 0", set_field("fill_order", 0), r"fill_order 0 is unknown"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tampered_field_fails_at_load(
    single: Collection, tmp_path: Path, edit: Edit, pattern: str
) -> None:
    coll = loaded(tampered(single, "band_1", edit), tmp_path)
    with pytest.raises(MissingMetadataError, match=pattern) as info:
        coll.sources("band_1")
    message = str(info.value)
    # It names the record, the band and the file, and says what to do.
    assert f"record {single.ids[0]!r} band 'band_1'" in message
    assert single.hrefs("band_1")[0] in message
    assert "xarray_rasteret.build" in message


def test_index_without_the_later_encoding_fields_reads_the_same(
    single: Collection, files: dict[str, str], tmp_path: Path
) -> None:
    # Indexes written before fill_order and ycbcr were recorded lack both fields: they
    # held only FillOrder 1 files and no YCbCr outside JPEG, and read as before.
    column = "band_1_metadata"
    typ = single.table.schema.field(column).type
    old_type = pa.struct([f for f in typ if f.name not in ("fill_order", "ycbcr")])
    rows = single.table.column(column).to_pylist()
    for row in rows:
        del row["fill_order"], row["ycbcr"]
    index = single.table.schema.get_field_index(column)
    old = Collection(single.table.set_column(index, column, pa.array(rows, old_type)))
    (src,) = loaded(old, tmp_path).sources("band_1")
    assert src.encoding.fill_order == 1 and src.encoding.ycbcr is None
    with rasterio.open(files["single"]) as ds:
        np.testing.assert_array_equal(read_all(src)[0], ds.read(1))


def test_unknown_compression_fails_before_reading(single: Collection) -> None:
    (src,) = tampered(single, "band_1", set_field("compression", 4)).sources("band_1")
    with pytest.raises(UnsupportedTiffError, match=r"compression CCITT Group 4 fax \(4\)"):
        read_all(src)


def test_planar_one_plane_only_where_rasteret_wrote_it(planar: Collection) -> None:
    """A planar band listing one plane's tiles is rasteret 0.4's form, never ours."""
    (src,) = planar.sources("band_2")
    per_plane = src.levels[0].tiles_across * src.levels[0].tiles_down
    mine = slice(per_plane, 2 * per_plane)

    def one_plane(md: dict[str, Any]) -> None:
        md["tile_offsets"] = md["tile_offsets"][mine]
        md["tile_byte_counts"] = md["tile_byte_counts"][mine]

    with pytest.raises(MissingMetadataError, match=r"one plane's tiles: only rasteret 0.4"):
        tampered(planar, "band_2", one_plane).sources("band_2")


def _file_with_nodata_text(path: Path, text: bytes, *, sparse: bool) -> np.ndarray:
    """A uint16 file whose GDAL_NODATA tag reads ``text`` (a value uint16 cannot hold)."""
    data = (np.arange(200 * 300, dtype=np.uint16).reshape(200, 300) % 1000 + 1).astype(np.uint16)
    if sparse:
        data[:64, :128] = 12345  # one whole tile of nodata: GDAL leaves it unwritten
    write_tiff(path, dtype="uint16", compress="DEFLATE", nodata=12345, data=data,
               SPARSE_OK="TRUE" if sparse else "FALSE")  # fmt: skip
    raw = path.read_bytes()
    assert raw.count(b"12345\x00") == 1
    path.write_bytes(raw.replace(b"12345\x00", text.ljust(6, b"\x00")))
    return data


# GDAL fills a sparse tile with nodata cast to the type (-1 -> 0), so only values that
# cast to 0 are compared with sparse tiles: a larger one (1e300 -> 65535) needs a
# sparse fill distinct from "no nodata", which RasterSource cannot express yet.
@pytest.mark.parametrize(
    ("text", "sparse"),
    [(b"-1", True), (b"nan", True), (b"-0.5", True), (b"1e300", False), (b"70000", False)],
)
def test_nodata_the_dtype_cannot_hold_is_ignored_as_gdal(
    tmp_path: Path, text: bytes, sparse: bool
) -> None:
    path = tmp_path / "nodata.tif"
    _file_with_nodata_text(path, text, sparse=sparse)
    coll = build([str(path)])
    # Whatever build made of the tag, an index that says so is read as GDAL reads.
    coll = tampered(coll, "band_1", set_field("nodata", float(text)))
    (src,) = loaded(coll, tmp_path).sources("band_1")
    with rasterio.open(path) as ds:
        theirs, mask = ds.read(1), ds.read_masks(1)
    assert src.nodata is None and (mask == 255).all()
    np.testing.assert_array_equal(read_all(src)[0], theirs)


# --------------------------------------------------------------------------- fuzz


def _random_edit(rng: np.random.Generator, md: dict[str, Any]) -> None:
    """One random tampering of one field: a value, a null, a list cut or changed.

    Only values no header could have, or that cannot change the pixels: a plausible
    edit (predictor 2 -> 1, byte order < -> >) reads as the index says, and only
    comparing with the file's header could tell.
    """
    level = md
    if md["overviews"] and rng.random() < 0.3:
        level = md["overviews"][int(rng.integers(len(md["overviews"])))]
    name = str(rng.choice(sorted(k for k, v in level.items() if k != "overviews")))
    value = level[name]
    special = [None, 0, -1, 17, 2**31, -(2**40), np.nan, np.inf, "foo", "<"]
    if isinstance(value, list) and value and rng.random() < 0.7:
        value = list(value)
        i = int(rng.integers(len(value)))
        kind = rng.integers(4)
        if kind == 0:
            value = value[:i]
        elif kind == 1:
            # Not 0: a tile of 0 bytes is sparse (as in GDAL), an offset 0 is tested.
            entries = [None, -1, 17, 2**31, -(2**40), np.nan]
            value[i] = entries[int(rng.integers(len(entries)))]
        elif kind == 2:
            value[i] = value[i] * int(rng.choice([-3, -1, 2, 3])) if value[i] else None
        else:
            value = value + value[:i]
    else:
        value = special[int(rng.integers(len(special)))]
    level[name] = value


def _try_tamper(coll: Collection, rng: np.random.Generator) -> Collection | None:
    """A tampered collection, or None when pyarrow refuses the value for the field's type."""
    try:
        return tampered(coll, "band_1", lambda md: _random_edit(rng, md))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return None


def test_fuzz_tampered_index_reads_right_or_raises(single: Collection) -> None:
    """200 random tamperings: equal pixels on every level, or a RasteretError."""
    (base,) = single.sources("band_1")
    expected = read_all(base)
    rng = np.random.default_rng(21)
    outcomes = {"same": 0, "error": 0, "refused by pyarrow": 0}
    for _ in range(200):
        coll = _try_tamper(single, rng)
        if coll is None:
            outcomes["refused by pyarrow"] += 1
            continue
        try:
            (src,) = coll.sources("band_1")
            got = read_all(src)
        except RasteretError:
            outcomes["error"] += 1
            continue
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
        outcomes["same"] += 1
    assert outcomes["error"] > 0 and outcomes["same"] > 0, outcomes


@pytest.mark.parametrize(
    ("dtype", "stored", "expected"),
    [
        ("float32", -3.39999999999999996e38, float(np.float32(-3.39999999999999996e38))),
        ("float32", 1e39, float("inf")),  # past float32: an infinity, as GDAL
        ("uint8", 254.5, 254.0),  # GDAL casts: truncated
        ("uint16", -1.0, None),  # outside the type: masks nothing
        ("uint16", float("nan"), None),
    ],
)
def test_index_nodata_is_compared_as_gdal_casts_it(
    tmp_path: Path, dtype: str, stored: float, expected: float | None
) -> None:
    """Indexes written before build rounded nodata get GDAL's rounding at load."""
    path = tmp_path / f"{dtype}.tif"
    write_tiff(path, dtype=dtype, compress="DEFLATE")
    coll = tampered(build([str(path)]), "band_1", set_field("nodata", stored))
    (src,) = coll.sources("band_1")
    assert src.nodata == expected
