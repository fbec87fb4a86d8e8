"""on_error="raise" | "nodata" against a server that fails some objects for good.

A range server on 127.0.0.1 serves three records of one grid, each with three
bands: ``B1`` (uint16, nodata 7), ``F`` (float32, no nodata) and ``I`` (int16, no
nodata). Record ``a`` is served; ``b``'s files answer 404; ``c``'s answer 503 to
every attempt. The hrefs carry a SAS-like signature, which no message, warning or
failure record may show. Under ``on_error="nodata"`` record ``a`` equals rasterio,
``b`` and ``c`` are nodata (7, NaN, 0), every failure is reported, and the
retries still happen (counted at the server); under ``"raise"`` the read raises
naming the object.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
from rasterio.windows import Window as RioWindow

import servers
import xarray_rasteret as xrr
from cogs import DEFAULT_TRANSFORM, with_datetimes, write_tiff
from xarray_rasteret._read.fetch import read_into
from xarray_rasteret._read.tasks import ReadOptions, ReadTask
from xarray_rasteret._types import Window
from xarray_rasteret.errors import (
    ObjectChangedError,
    ObjectNotFoundError,
    ReadFailedError,
    ReadFailureWarning,
    TileDecodeError,
)

SECRET = "TOPSECRETSIG"
ATTEMPTS = 3
OPTIONS = {"max_attempts": ATTEMPTS, "backoff": 0.0}
BANDS = {"B1": ("uint16", 7), "F": ("float32", None), "I": ("int16", None)}
FAILED_FILL = {"B1": 7, "F": np.nan, "I": 0}
RECORDS = {"a": "2024-01-01", "b": "2024-01-02", "c": "2024-01-03"}


class _Handler(servers._Handler):
    """The range server's handler, counting requests per path and failing some with 503."""

    server: FailingServer

    def _respond(self, head: bool, fault: str | None) -> None:
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        with self.server.lock:
            self.server.hits[rel] += 1
        if rel in self.server.unavailable:
            return self._plain(503)
        if rel in self.server.delayed:
            self.server.stopping.wait(0.5)
        return super()._respond(head, fault)


class FailingServer(servers.RangeHTTPServer):
    """A range server whose ``unavailable`` paths answer 503 every time (``missing``: 404)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.RequestHandlerClass = _Handler
        self.hits: Counter[str] = Counter()
        self.unavailable: frozenset[str] = frozenset()
        self.delayed: frozenset[str] = frozenset()

    def fail(self, *, missing: set[str] = frozenset(), unavailable: set[str] = frozenset(),
             delayed: set[str] = frozenset(), **faults: Any) -> None:
        self.set_faults(missing=missing, **faults)
        with self.lock:
            self.unavailable = frozenset(unavailable)
            self.delayed = frozenset(delayed)  # answered 0.5 s late
            self.hits.clear()


def _name(record: str, band: str) -> str:
    return f"{record}_{band}.tif"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("on_error")
    for i, record in enumerate(RECORDS):
        for j, (band, (dtype, nodata)) in enumerate(BANDS.items()):
            write_tiff(root / _name(record, band), dtype=dtype, nodata=nodata,
                       compress="DEFLATE", seed=10 * i + j)
    with FailingServer(root) as server:
        hrefs = [f"{server.url(_name(r, b))}?sv=2024&sig={SECRET}" for r in RECORDS for b in BANDS]
        col = xrr.build(
            hrefs, storage_options=OPTIONS,
            group_by=lambda h: tuple(h.split("?")[0].rsplit("/", 1)[-1][:-4].split("_")),
        )
        col = xrr.Collection(with_datetimes(col.table, RECORDS))
        yield server, col, root


@pytest.fixture
def failing(served):
    """The collection, with b's objects answering 404 and c's 503 (counters cleared)."""
    server, col, root = served
    server.fail(missing={_name("b", band) for band in BANDS},
                unavailable={_name("c", band) for band in BANDS})
    yield server, col, root
    server.fail()


def _rasterio(root: Path, record: str, band: str, window: RioWindow | None = None) -> np.ndarray:
    with rasterio.open(root / _name(record, band)) as src:
        return src.read(1, window=window)


def _assert_failed(values: np.ndarray, band: str) -> None:
    fill = FAILED_FILL[band]
    if np.isnan(fill):
        assert np.isnan(values).all()
    else:
        assert values.size and (values == fill).all()


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and "sig=" not in text


def _warned(record: list[warnings.WarningMessage]) -> str:
    texts = [str(w.message) for w in record if issubclass(w.category, ReadFailureWarning)]
    assert texts, "no ReadFailureWarning"
    _no_secret(*texts)
    return "\n".join(texts)


def _check_failures(server: FailingServer, failures: list[Any], bands, tiles: int = 12) -> None:
    """Every failed object listed with all its ``tiles``; 503s tried ATTEMPTS times, 404s once.

    12 tiles: a whole 300 x 200 image in 128 x 64 tiles.
    """
    by_object: dict[str, list[Any]] = {}
    for f in failures:
        _no_secret(f.href, f.message, str(f))
        assert f.href.endswith("?<redacted>")
        by_object.setdefault(urlsplit(f.href).path.lstrip("/"), []).append(f)
    assert set(by_object) == {_name(r, b) for r in "bc" for b in bands}
    for name, listed in by_object.items():
        assert sum(len(f.tiles) for f in listed) == tiles
        expected = "ObjectNotFoundError" if name.startswith("b") else "ReadFailedError"
        assert {f.error for f in listed} == {expected}
        attempts = 1 if name.startswith("b") else ATTEMPTS
        assert server.hits[name] == attempts * len(listed), name
    assert all(server.hits[_name("a", b)] >= 1 for b in bands)


@pytest.mark.parametrize("chunks", [None, {}], ids=["eager", "dask"])
def test_engine_nodata_reads_the_rest_and_reports_every_failure(failing, chunks):
    server, col, root = failing
    ds = xr.open_dataset(col, engine="rasteret", on_error="nodata", chunks=chunks,
                         storage_options=OPTIONS)
    with pytest.warns(ReadFailureWarning) as record, xrr.track() as stats:
        ds = ds.compute()
    for band in BANDS:
        values = ds[band].values
        np.testing.assert_array_equal(values[0], _rasterio(root, "a", band))
        _assert_failed(values[1], band)
        _assert_failed(values[2], band)
    text = _warned(record)
    for band in BANDS:
        assert _name("b", band) in text and _name("c", band) in text
    assert "ObjectNotFoundError" in text and "HTTP 503" in text
    assert "read_stats().failures" in text
    _check_failures(server, stats.failures, BANDS)
    # The process-wide totals list them too.
    assert {f.href for f in stats.failures} <= {f.href for f in xrr.read_stats().failures}


def test_merged_reads_each_warn_of_their_own_failures_before_returning(failing):
    """Two load_async calls merged into one read: b's (404) warns as it returns, a's never.

    a's object answers late, so the merged read is still running when b's call
    returns: its warning must not wait for the merged read to end.
    """
    server, col, _ = failing
    server.fail(missing={_name("b", "B1")}, delayed={_name("a", "B1")})
    ds = xr.open_dataset(col, engine="rasteret", bands=["B1"], on_error="nodata",
                         storage_options=OPTIONS)

    async def main():
        async def b_then_look():
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                await ds.B1.isel(time=1).load_async()
                return [str(w.message) for w in seen], time.monotonic()

        a = ds.B1.isel(time=0).load_async()
        (seen, b_done), _ = await asyncio.gather(b_then_look(), a)
        return seen, b_done, time.monotonic()

    seen, b_done, a_done = asyncio.run(main())
    assert a_done - b_done > 0.2  # b returned while a's read was still running
    assert len(seen) == 1 and _name("b", "B1") in seen[0] and _name("a", "B1") not in seen[0]


def test_engine_raise_names_the_object_after_the_retries(failing):
    server, col, _ = failing
    ds = xr.open_dataset(col, engine="rasteret", bands=["B1"], storage_options=OPTIONS)
    with xrr.track() as stats:
        with pytest.raises(ObjectNotFoundError, match=r"b_B1\.tif\?<redacted> does not exist"):
            ds.B1.isel(time=1).values
        with pytest.raises(ReadFailedError, match=rf"c_B1\.tif.* after {ATTEMPTS} attempt"
                           ) as info:
            ds.B1.isel(time=2).values
    _no_secret(str(info.value), repr(info.value))
    assert server.hits[_name("c", "B1")] == ATTEMPTS
    assert stats.failures == []


@pytest.mark.parametrize(
    "faults",
    [{"p_truncate": 1.0}, {"p_slow": 1.0, "slow_seconds": 2.0}],
    ids=["truncated-bodies", "timeouts"],
)
def test_short_bodies_and_timeouts_become_nodata_after_the_retries(served, faults):
    server, col, _ = served
    server.fail(**faults)
    try:
        options = {**OPTIONS, "timeout": 0.2}
        ds = xr.open_dataset(col, engine="rasteret", bands=["B1"], on_error="nodata",
                             storage_options=options)
        with pytest.warns(ReadFailureWarning, match="ReadFailedError"), xrr.track() as stats:
            values = ds.B1.values
        hits = Counter(server.hits)
    finally:
        server.fail()
    assert (values == 7).all()
    assert len({f.href for f in stats.failures}) == 3
    for name in (_name(r, "B1") for r in RECORDS):
        ranges = [f for f in stats.failures if name in f.href]
        assert hits[name] == ATTEMPTS * len(ranges)


def _pixel_box(rows: tuple[int, int], cols: tuple[int, int]) -> shapely.Polygon:
    t = DEFAULT_TRANSFORM
    return shapely.box(t.c + cols[0] * t.a, t.f + rows[1] * t.e, t.c + cols[1] * t.a,
                       t.f + rows[0] * t.e)


def test_helpers_nodata(failing):
    server, col, root = failing
    rows, cols = (30, 150), (40, 250)
    box = _pixel_box(rows, cols)
    window = RioWindow(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0])
    kw = {"geometry_crs": "EPSG:32633", "storage_options": OPTIONS, "on_error": "nodata"}

    with pytest.warns(ReadFailureWarning, match=r"b_B1\.tif") as record, xrr.track() as stats:
        arr = xrr.get_numpy(col, geometries=[box], bands=list(BANDS), **kw)
    assert "c_F.tif" in _warned(record)
    assert arr.shape == (3, 3, *window_shape(window))
    for j, band in enumerate(BANDS):
        np.testing.assert_array_equal(arr[0, j], _rasterio(root, "a", band, window))
        _assert_failed(arr[1, j], band)
        _assert_failed(arr[2, j], band)
    _check_failures(server, stats.failures, BANDS, tiles=3 * 2)  # rows 30-150, cols 40-250

    with pytest.warns(ReadFailureWarning, match=r"c_F\.tif"):
        ds = xrr.get_xarray(col, geometries=[box], bands=["F"], **kw)
    values = ds.F.isel(geometry=0).transpose("time", "y", "x").values
    np.testing.assert_array_equal(values[0], _rasterio(root, "a", "F", window))
    _assert_failed(values[1:], "F")

    t = DEFAULT_TRANSFORM
    points = [shapely.Point(t.c + (c + 0.5) * t.a, t.f + (r + 0.5) * t.e)
              for r, c in [(3, 4), (100, 200), (190, 290)]]
    with pytest.warns(ReadFailureWarning, match=r"b_I\.tif"):
        table = xrr.sample_points(col, points=points, bands=list(BANDS), **kw).to_pandas()
    for band in BANDS:
        rows_a = table[(table.record_id == "a") & (table.band == band)]
        full = _rasterio(root, "a", band)
        assert rows_a.value.tolist() == [float(full[r, c]) for r, c in [(3, 4), (100, 200),
                                                                        (190, 290)]]
        failed = table[(table.record_id != "a") & (table.band == band)]
        assert len(failed) == 6
        if band == "I":  # an integer band without nodata: 0, not flagged (documented)
            assert (failed.value == 0).all() and not failed.nodata.any()
        else:
            assert failed.nodata.all()


def window_shape(window: RioWindow) -> tuple[int, int]:
    return int(window.height), int(window.width)


@pytest.mark.parametrize("bad", ["skip", "ignore", None, True])
def test_an_unknown_on_error_is_refused_before_any_read(served, bad):
    server, col, _ = served
    server.fail()
    message = rf"on_error={bad!r} is not accepted: pass on_error='raise' .* or on_error='nodata'"
    with pytest.raises(ValueError, match=message):
        xr.open_dataset(col, engine="rasteret", on_error=bad)
    with pytest.raises(ValueError, match=message):
        xrr.get_numpy(col, geometries=[_pixel_box((0, 8), (0, 8))], bands=["B1"],
                      geometry_crs="EPSG:32633", on_error=bad)
    with pytest.raises(ValueError, match=message):
        xrr.sample_points(col, points=[shapely.Point(16.0, 45.0)], bands=["B1"], on_error=bad)
    assert server.hits == Counter()


@pytest.fixture
def local(tmp_path):
    path = tmp_path / "x_B1.tif"
    write_tiff(path, dtype="uint16", nodata=7, compress="DEFLATE", seed=3)
    with rasterio.open(path) as src:
        expected = src.read(1)
    col = xrr.build([str(path)], group_by=lambda h: ("x", "B1"))
    return path, col, expected


def test_a_corrupt_tile_is_nodata_and_the_others_are_read(local):
    path, col, expected = local
    layout = col.sources("B1")[0].levels[0]
    tile = 5  # row 1, col 2 of 4 x 3 tiles
    start, count = int(layout.tile_offsets[tile]), int(layout.tile_byte_counts[tile])
    with open(path, "r+b") as f:  # same size: the staleness check passes
        f.seek(start)
        f.write(b"\xff" * count)
    with pytest.raises(TileDecodeError, match=r"x_B1\.tif"):
        xr.open_dataset(col, engine="rasteret").B1.values
    with pytest.warns(ReadFailureWarning, match="TileDecodeError"), xrr.track() as stats:
        got = xr.open_dataset(col, engine="rasteret", on_error="nodata").B1.values[0]
    r0, c0 = 64, 256
    expected[r0 : r0 + 64, c0:] = 7
    np.testing.assert_array_equal(got, expected)
    assert [(f.start, f.end, f.tiles) for f in stats.failures] == [
        (start, start + count, ((0, 1, 2),))
    ]


def test_a_changed_object_still_raises_under_nodata(local):
    path, col, _ = local
    with open(path, "ab") as f:
        f.write(b"\0" * 100)
    with pytest.raises(ObjectChangedError):
        xr.open_dataset(col, engine="rasteret", on_error="nodata").B1.values


def test_a_file_cut_short_is_changed_or_with_check_unchanged_false_nodata(local):
    """Shorter than its index: ObjectChangedError (size check), else its lost tiles nodata."""
    path, col, expected = local
    layout = col.sources("B1")[0].levels[0]
    last = int(layout.tile_offsets[11])
    with open(path, "r+b") as f:
        f.truncate(last + 10)  # the last tile (row 3, col 2) loses its bytes
    with pytest.raises(ObjectChangedError):
        xr.open_dataset(col, engine="rasteret", on_error="nodata").B1.values
    with pytest.warns(ReadFailureWarning, match="TruncatedFileError"), xrr.track() as stats:
        got = xr.open_dataset(col, engine="rasteret", on_error="nodata",
                              check_unchanged=False).B1.values[0]
    # The tiles that arrived whole are read; only the cut one is nodata.
    assert [(f.error, f.tiles) for f in stats.failures] == [("TruncatedFileError", ((0, 3, 2),))]
    expected[192:, 256:] = 7
    np.testing.assert_array_equal(got, expected)


def test_a_missing_local_float_file_reads_as_nan(tmp_path):
    path = tmp_path / "f_F.tif"
    write_tiff(path, dtype="float32", compress="DEFLATE")
    col = xrr.build([str(path)], group_by=lambda h: ("f", "F"))
    path.unlink()
    with pytest.warns(ReadFailureWarning, match="ObjectNotFoundError"):
        got = xr.open_dataset(col, engine="rasteret", on_error="nodata").F.values
    assert got.dtype == np.float32 and np.isnan(got).all()


@pytest.mark.parametrize("first", ["raise", "nodata"])
def test_a_read_waiting_for_a_shared_tile_applies_its_own_on_error(failing, first):
    """Two concurrent reads of one tile: one request sequence, each read by its own policy."""
    server, col, _ = failing
    src = col.sources("B1")[2]  # c: 503 on every attempt
    outs = [np.empty((64, 128), np.uint16) for _ in range(2)]
    policies = [first, "nodata" if first == "raise" else "raise"]

    async def both():
        return await asyncio.gather(
            *(read_into([ReadTask(src, 0, Window(0, 64, 0, 128), out, fill=src.fill)],
                        ReadOptions(storage_options=OPTIONS, on_error=policy))
              for out, policy in zip(outs, policies, strict=True)),
            return_exceptions=True,
        )

    with pytest.warns(ReadFailureWarning, match=r"c_B1\.tif"):
        results = asyncio.run(both())
    for out, policy, result in zip(outs, policies, results, strict=True):
        if policy == "raise":
            assert isinstance(result, ReadFailedError)
        else:
            assert result is None and (out == 7).all()
    assert server.hits[_name("c", "B1")] == ATTEMPTS  # fetched once for both


def test_distributed_workers_warn_the_client(failing):
    """A compute on worker processes: the warning reaches the client process."""
    from distributed import Client, LocalCluster

    server, col, root = failing
    ds = xr.open_dataset(col, engine="rasteret", bands=["B1"], on_error="nodata", chunks={},
                         storage_options=OPTIONS)
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None)
        as cluster,
        Client(cluster),
        pytest.warns(ReadFailureWarning) as record,
    ):
        values = ds.B1.compute().values
        deadline = time.monotonic() + 10
        while not any(issubclass(w.category, ReadFailureWarning) for w in record):
            assert time.monotonic() < deadline, "no warning reached the client"
            time.sleep(0.05)
    np.testing.assert_array_equal(values[0], _rasterio(root, "a", "B1"))
    assert (values[1:] == 7).all()
    text = _warned(record)
    assert "b_B1.tif" in text and "c_B1.tif" in text


def test_a_failed_mosaic_member_leaves_its_pixels_to_the_next(failing):
    """groupby: b (404) comes first in its group, a second; a fills b's pixels."""
    import pyarrow as pa

    server, col, root = failing
    table = with_datetimes(col.table, {"b": "2024-01-01", "a": "2024-01-02", "c": "2024-01-03"})
    groups = {"a": "x", "b": "x", "c": "y"}
    table = table.append_column("g", pa.array([groups[i] for i in table.column("id").to_pylist()]))
    ds = xr.open_dataset(xrr.Collection(table), engine="rasteret", groupby="g",
                         on_error="nodata", storage_options=OPTIONS)
    with pytest.warns(ReadFailureWarning) as record:  # a warning per variable read
        ds = ds.load()
    text = _warned(record)
    assert all(_name(r, b) in text for r in "bc" for b in BANDS)
    for band in ("B1", "F"):
        np.testing.assert_array_equal(ds[band].values[0], _rasterio(root, "a", band))
    # Pixels no member could give take the mosaic's fill: nodata, else 0 (documented).
    assert (ds.B1.values[1] == 7).all() and (ds.F.values[1] == 0).all()
    # An integer band without nodata has no missing value: b's failed 0s win (documented).
    assert (ds.I.values == 0).all()
