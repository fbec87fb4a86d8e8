"""Hive-partitioned collection folders: partition pruning, then row-group pruning.

A filter on a partition key (or a time range, through ``year=/month=``) must open
no file of another partition, counted at the store (local, S3 on moto, HTTP);
inside the files opened, row groups are pruned as in a single file. The rows
selected equal those of the same filter over the table in memory, and the pixels
read from a pruned folder equal those of the same collection as one file and
rasterio's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr
from benchmarks.scale import generate, query_of

from servers import RangeHTTPServer
from xarray_rasteret._sync import sync
from xarray_rasteret.collection import Collection, load
from xarray_rasteret.collection.parquet import write_manifest, write_partitioned
from xarray_rasteret.errors import ObjectNotFoundError
from xarray_rasteret.storage import CountingStore, LocalStore, resolve_store, track

N = 8000
ROWS = 32  # rows per row group here: several per file


class RecordingStore(LocalStore):
    """The local store, remembering the path of every HEAD and range read."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def head_async(self, path: str) -> dict[str, Any]:
        self.paths.append(path)
        return await super().head_async(path)

    async def _fetch_retried(
        self, path: str, start: int, end: int
    ) -> tuple[bytes, int | None, str | None]:
        self.paths.append(path)
        return await super()._fetch_retried(path, start, end)

    def opened(self, root: Path) -> set[str]:
        """The files read, relative to ``root``."""
        return {str(Path(p).relative_to(root)) for p in self.paths}


def _with_year_month(table: pa.Table) -> pa.Table:
    when = table.column("datetime")
    table = table.append_column("year", pc.cast(pc.year(when), pa.int32()))
    return table.append_column("month", pc.cast(pc.month(when), pa.int32()))


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    """The synthetic index written as ``year=/month=`` folders, and the table in memory."""
    root = tmp_path_factory.mktemp("hive") / "s2"
    table = _with_year_month(pa.concat_tables(generate(N, chunk=4000)))
    assert (
        write_partitioned(table, root, ["year", "month"], row_group_rows=ROWS, manifest=True) == N
    )
    return root, table


def _footer(path: Path) -> int:
    """Bytes of a Parquet file's footer (metadata, its length and the magic)."""
    return pq.ParquetFile(path).metadata.serialized_size + 8


def _query() -> dict[str, Any]:
    q = query_of(N)
    return {"bbox": q["bbox"], "time": tuple(q["time"]), "cloud_cover_lt": q["cloud_cover_lt"]}


def test_written_layout_sorted_row_groups_keys_in_folders(hive: tuple[Path, pa.Table]) -> None:
    root, table = hive
    files = sorted(root.rglob("*.parquet"))
    months = {(r["year"], r["month"]) for r in table.select(["year", "month"]).to_pylist()}
    assert len(files) == len(months) > 12
    f = pq.ParquetFile(files[0])
    assert "year" not in f.schema_arrow.names and f.metadata.num_row_groups > 1
    assert f.metadata.row_group(0).num_rows == ROWS
    assert (root / "_metadata").exists()
    assert pq.read_metadata(root / "_metadata").num_rows == N


def test_time_filter_opens_only_its_month_and_prunes_row_groups(
    hive: tuple[Path, pa.Table],
) -> None:
    root, table = hive
    eager = Collection(table).filter(**_query())
    assert 1 <= len(eager) <= 10
    store = RecordingStore()
    with track() as read:
        coll = load(str(root), backend=CountingStore(store))
        sel = coll.filter(**_query())
        got = sorted(sel.ids)
    assert got == sorted(eager.ids)
    # The first file's footer gives the schema; then only June 2019 is opened.
    first = str(sorted(root.rglob("*.parquet"))[0].relative_to(root))
    assert store.opened(root) == {first, "year=2019/month=6/part-0.parquet"}
    june = root / "year=2019" / "month=6" / "part-0.parquet"
    assert pq.ParquetFile(june).metadata.num_row_groups > 2
    # Beyond the two footers, the light columns of a few row groups: a fraction of the
    # month's column data.
    footers = sum(_footer(f) for f in (root / first, june))
    data = june.stat().st_size - _footer(june)
    assert 0 < read.bytes - footers < data / 4, (read.bytes, footers, data)
    assert sel.table.column("year").to_pylist() == [2019] * len(got)
    assert sel.table.column("month").to_pylist() == [6] * len(got)


def test_partition_key_filters_open_no_other_partition(hive: tuple[Path, pa.Table]) -> None:
    root, table = hive
    eager = Collection(table)
    for kw, months in (
        ({"year": 2018, "month": [2, 3]}, 2),
        ({"year_ge": 2019, "month_lt": 3}, None),
        ({"time": ("2017-11-20", "2017-12-10")}, 2),
        ({"year": 1990}, 0),
    ):
        want = eager.filter(**kw)
        # Every month these filters admit has records: the folders to open are theirs.
        opened = {f"year={r['year']}/month={r['month']}"
                  for r in want.table.select(["year", "month"]).to_pylist()}  # fmt: skip
        assert months is None or len(opened) == months
        store = RecordingStore()
        coll = load(str(root), backend=CountingStore(store))
        first = {str(Path(p).parent.relative_to(root)) for p in store.paths}
        assert len(first) == 1  # the schema's file
        sel = coll.filter(**kw)
        assert sorted(sel.ids) == sorted(want.ids), kw
        folders = {str(Path(p).parent.relative_to(root)) for p in store.paths}
        assert folders - first == opened - first, kw


def test_lazy_hive_equals_eager_for_every_kind_of_filter(hive: tuple[Path, pa.Table]) -> None:
    root, table = hive
    eager, lazy = Collection(table), load(root)
    assert len(lazy) == N and lazy.bands == eager.bands
    assert lazy.schema.field("year").type == pa.int32()
    q = query_of(N)
    for kw in (
        {"bbox": q["bbox"]},
        {"eo:cloud_cover_ge": 99.5},
        {"id": [table.column("id")[5].as_py(), "nope"]},
        {"datetime": (None, "2017-01-20")},
        {"proj:epsg": 32630, "eo:cloud_cover_lt": 1, "year": 2018},
    ):
        assert sorted(lazy.filter(**kw).ids) == sorted(eager.filter(**kw).ids), kw
    chained = lazy.filter(year=2019).filter(time="2019-06").filter(bbox=q["bbox"])
    assert sorted(chained.subset(cloud_cover_lt=50).ids) == sorted(eager.filter(**_query()).ids)


def test_s3_hive_folder_reads_only_the_partition(
    s3_server: Any, hive: tuple[Path, pa.Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, table = hive
    for path in root.rglob("*.parquet"):  # no _metadata: S3 lists the folder
        s3_server.upload(f"hive/{path.relative_to(root)}", path.read_bytes())
    opts = s3_server.storage_options
    asked: list[tuple[str, str, str]] = []
    gate = type(s3_server.gate)
    answer = gate.__call__

    def seen(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        key = environ["PATH_INFO"].split("/", 2)[2]  # /bucket/key, as the server got it
        asked.append((environ["REQUEST_METHOD"], key, environ.get("HTTP_RANGE", "")))
        return answer(self, environ, start_response)

    monkeypatch.setattr(gate, "__call__", seen)
    coll = load(f"s3://{s3_server.bucket}/hive/", storage_options=opts)
    sel = coll.filter(**_query())
    assert sorted(sel.ids) == sorted(Collection(table).filter(**_query()).ids)
    first = f"hive/{sorted(root.rglob('*.parquet'))[0].relative_to(root)}"
    june = "hive/year=2019/month=6/part-0.parquet"
    assert {k for _, k, _ in asked} == {"", first, june}, asked  # "": the listing
    gets = [r for m, k, r in asked if m == "GET" and k == june]
    assert gets and all(r.startswith("bytes=") for r in gets)  # ranges, never the object
    ranges = [tuple(int(v) for v in r[6:].split("-")) for r in gets]
    path = root / june[5:]
    assert (
        sum(b - a + 1 for a, b in ranges)
        < _footer(path) + (path.stat().st_size - _footer(path)) / 4
    )
    # Listed page by page; an empty folder's error names the URL.
    store, prefix = resolve_store(f"s3://{s3_server.bucket}/hive/", storage_options=opts)
    listed = sync(store.list_async(prefix, page_size=7))
    assert len(listed) == len(list(root.rglob("*.parquet")))
    assert sum(1 for _, k, _ in asked if k == "") >= 1 + len(listed) // 7
    with pytest.raises(ObjectNotFoundError, match=r"no collection at 's3://test-bucket/nothing/'"):
        load(f"s3://{s3_server.bucket}/nothing", storage_options=opts)


def test_http_hive_folder_through_its_manifest(hive: tuple[Path, pa.Table], tmp_path: Path) -> None:
    root, table = hive
    with RangeHTTPServer(root.parent) as server:
        coll = load(server.url(root.name + "/"))
        assert len(coll) == N
        sel = coll.filter(year=2019, month=6)
        assert len(sel) == len(Collection(table).filter(year=2019, month=6))
        sent = server.stats.bytes_sent
        total = sum(p.stat().st_size for p in root.rglob("*.parquet"))
        assert sent < total  # footers (all files: len() needs each one's row count) only
    bare = tmp_path / "bare"
    write_partitioned(table.slice(0, 100), bare, ["year"])
    with RangeHTTPServer(tmp_path) as server:
        url = server.url("bare/")
        with pytest.raises(
            ObjectNotFoundError,
            match=r"no collection at 'http://127\.0\.0\.1:\d+/bare/'"
            r".*HTTP cannot list a folder.*write_manifest",
        ):
            load(url)
        write_manifest(bare)
        assert len(load(url)) == 100
        assert len(load(server.url("bare"))) == 100  # no object there: the folder


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Collection, Path, Path]:
    """The embedded sample with a ``fortnight`` column, as one file and as a hive folder."""
    import xarray_rasteret as xrr
    from xarray_rasteret.cli import sample_items_path

    d = tmp_path_factory.mktemp("hive_sample")
    built = xrr.build(sample_items_path(), bands=["B04", "B08"])
    day = pc.day(built.table.column("datetime"))
    table = built.table.append_column(
        "fortnight", pc.cast(pc.add(pc.divide(day, 11), 1), pa.int32())
    )
    coll = Collection(table)
    coll.to_parquet(d / "one.parquet")
    coll.export(d / "hive", partition_by=("year", "month", "fortnight"))
    return coll, d / "one.parquet", d / "hive"


def test_pixels_of_a_pruned_hive_folder_equal_one_file_and_rasterio(
    sample: tuple[Collection, Path, Path],
) -> None:
    coll, one, folder = sample
    assert sorted(p.name for p in folder.iterdir()) == ["year=2024"]
    assert len(list(folder.rglob("*.parquet"))) == 2
    store = RecordingStore()
    lazy = load(folder, backend=CountingStore(store))
    assert {Path(p).parent.name for p in store.paths} == {"fortnight=1"}  # the schema's
    store.paths.clear()
    pruned = lazy.filter(fortnight=2)
    assert {Path(p).parent.name for p in store.paths} == {"fortnight=2"}
    single = load(one).filter(fortnight=2)
    assert pruned.ids == single.ids and len(pruned) == 2
    ds = xr.open_dataset(pruned, engine="rasteret", bands=["B04"])
    ref = xr.open_dataset(single, engine="rasteret", bands=["B04"])
    np.testing.assert_array_equal(ds.B04.values, ref.B04.values)
    for k, src in enumerate(pruned.sources("B04")):
        with rasterio.open(src.href) as r:
            np.testing.assert_array_equal(ds.B04.values[k], r.read(1))


def test_folder_whose_datetimes_disagree_with_year_month_is_refused(tmp_path: Path) -> None:
    table = _with_year_month(next(generate(40, chunk=40)))
    month = table.column("month").to_pylist()
    table = table.set_column(table.column_names.index("month"), "month",
                             pa.array([m % 12 + 1 for m in month], pa.int32()))  # fmt: skip
    write_partitioned(table, tmp_path / "bad", ["year", "month"])
    with pytest.raises(
        ValueError,
        match=r"part-0\.parquet: its records' datetime .* lies outside "
        r"its folder year=\d+/month=\d+.*Collection\.export",
    ):
        len(load(tmp_path / "bad"))


def test_partition_folders_with_other_keys_are_refused(tmp_path: Path) -> None:
    table = _with_year_month(next(generate(40, chunk=40)))
    write_partitioned(table, tmp_path / "mixed", ["year"])
    write_partitioned(table, tmp_path / "mixed" / "year=1999", ["month"])
    with pytest.raises(
        ValueError,
        match=r"the partition folders disagree: .* has keys \['year', 'month'\] but .* other keys",
    ):
        load(tmp_path / "mixed")
    with pytest.raises(ValueError, match=r"partition_by is empty"):
        write_partitioned(table, tmp_path / "none", [])


def test_null_and_text_keys_round_trip_and_remote_writes_are_refused(tmp_path: Path) -> None:
    table = next(generate(40, chunk=40))
    sat = [None if i % 4 == 0 else ("S2A/x" if i % 2 else "S2 B") for i in range(40)]
    table = table.append_column("sat", pa.array(sat, pa.string()))
    write_partitioned(table, tmp_path / "t", ["sat"])
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == ["sat=S2%20B", "sat=S2A%2Fx", "sat=__HIVE_DEFAULT_PARTITION__"]
    back = load(tmp_path / "t")
    assert back.schema.field("sat").type == pa.string()
    assert sorted(back.filter(sat="S2A/x").ids) == sorted(Collection(table).filter(sat="S2A/x").ids)
    got = dict(zip(back.ids, back.table.column("sat").to_pylist(), strict=True))
    assert got == dict(zip(table.column("id").to_pylist(), sat, strict=True))
    with pytest.raises(
        ValueError, match=r"cannot write a partitioned folder to 's3://b/p'.*locally"
    ):
        write_partitioned(table, "s3://b/p", ["sat"])
