"""A tampered or corrupt index fails at load with a clear error, never reads wrong.

Each case builds a real collection from GeoTIFFs, edits one field of its
``{band}_metadata`` column with pyarrow, writes and loads it, and checks the
error (type and what the message names) or, for nodata the band's type cannot
hold, that the pixels and mask are GDAL's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import rasterio
from index_fuzz import Edit, index_bytes, random_edit, read_all, set_field, tampered

from cogs import write_tiff
from guarded import Case, child_program, run_cases, table
from xarray_rasteret.collection import Collection, load
from xarray_rasteret.errors import MissingMetadataError, UnsupportedTiffError
from xarray_rasteret.ingest import build

HERE = Path(__file__).parent

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


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (set_field("compression", 4), r"CCITT fax tiles must hold one 1-bit sample"),
        (set_field("compression", 0), r"compression unknown \(0\) is not supported"),
        (set_field("bits_per_sample", 17), r"17-bit samples declared as uint16"),
    ],
)
def test_undecodable_encoding_fails_at_load_naming_the_record(
    single: Collection, edit: Edit, pattern: str
) -> None:
    with pytest.raises(UnsupportedTiffError, match=pattern) as info:
        tampered(single, "band_1", edit).sources("band_1")
    assert str(info.value).startswith(f"record {single.ids[0]!r} band 'band_1' (")
    assert single.hrefs("band_1")[0] in str(info.value)


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


def _try_tamper(coll: Collection, rng: np.random.Generator) -> Collection | None:
    """A tampered collection, or None when pyarrow refuses the value for the field's type."""
    try:
        return tampered(coll, "band_1", lambda md: random_edit(rng, md))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return None


# What each guarded child does with one tampered index: load it and read every
# level of the band, then compare with the untampered pixels.
_READ_INDEX = """
    try:
        (src,) = load(path).sources("band_1")
        got = read_all(src)
    except RasteretError as e:
        # A traceback shows the notes too: a decode error names its file and tile there.
        text = "\\n".join([str(e), *getattr(e, "__notes__", [])])
        res = {"outcome": "clear" if HREF in text else "unnamed", "message": text[:300]}
    else:
        same = len(got) == len(expected) and all(
            np.array_equal(a, b) for a, b in zip(got, expected)
        )
        res = {"outcome": "ok"} if same else {"outcome": "wrong", "message": "pixels differ"}
"""


def _index_child(expected: Path, href: str) -> str:
    setup = f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import numpy as np
        from index_fuzz import read_all
        from xarray_rasteret.collection import load
        from xarray_rasteret.errors import RasteretError
        HREF = {href!r}
        expected = list(np.load({str(expected)!r}).values())
    """
    return child_program(setup, _READ_INDEX)


def test_tampered_indexes_in_guarded_children(single: Collection, tmp_path: Path) -> None:
    """Every fixed case and 200 random tamperings, each loaded and read in a child under a
    2 GiB memory limit and a deadline: the untampered pixels on every level, or a
    RasteretError naming the file; no death, hang, memory blow-up or other exception."""
    (base,) = single.sources("band_1")
    expected = tmp_path / "expected.npz"
    np.savez(expected, *read_all(base))
    scratch = tmp_path / "scratch.parquet"
    cases = [
        Case("fixed", label, index_bytes(tampered(single, "band_1", edit), scratch))
        for label, edit, _ in CASES
    ]
    rng = np.random.default_rng(21)
    refused = 0
    while len(cases) < len(CASES) + 200:
        coll = _try_tamper(single, rng)
        if coll is None:
            refused += 1
            continue
        label = f"random {len(cases) - len(CASES)}"
        cases.append(Case("random", label, index_bytes(coll, scratch)))
    child = _index_child(expected, single.hrefs("band_1")[0])
    results = run_cases(cases, tmp_path, timeout=20.0, workers=2, child=child, suffix=".parquet")
    print(f"\n{table(results)}\n(pyarrow refused {refused} tamperings of a field's type)")
    bad = [r for r in results if r.outcome not in ("ok", "clear")]
    assert not bad, table(results) + "".join(
        f"\n{r.outcome} {r.case.label}: {r.detail[:200]}" for r in bad
    )
    fixed = [r.outcome for r in results if r.case.kind == "fixed"]
    assert fixed == ["clear"] * len(CASES)
    assert {r.outcome for r in results if r.case.kind == "random"} == {"ok", "clear"}


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
