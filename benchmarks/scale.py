"""Index scale: synthetic Sentinel-2-like collections of 1k to 1M records (issue 25).

Run ``python -m benchmarks.scale --records 1000 100000 [--million]``.

The indexes are generated directly as tables in the package's schema (no TIFF is
read): 10980 px images in 1024 px tiles (121 tiles per band), 3 bands, on a
grid of UTM tiles (100 km apart, 109.8 km wide, as the Sentinel-2 grid), one
acquisition every 5 days per tile from 2017 on, ``eo:cloud_cover`` uniform in
0..100, per-file ETags and tile tables of contiguous tiles (GDAL's 4-byte
leader and trailer around each). They are written with the package's writer;
each measurement runs in a fresh subprocess (peak RSS is ``getrusage``'s
``ru_maxrss`` of that process), locally and through the loopback HTTP server of
``tests/servers.py`` (bytes and requests counted at the server).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["generate", "main", "query_of"]

BANDS = ("B04", "B03", "B02")
SIZE, TILE = 10980, 1024
TILES = (-(-SIZE // TILE)) ** 2
DAYS = 5
_T0 = np.datetime64("2017-01-01T10:30:00", "us")


def _tiles(n_tiles: int) -> list[dict[str, Any]]:
    """``n_tiles`` UTM tiles over Europe: zone, EPSG, origin, name, footprint (CRS84)."""
    import shapely
    from pyproj import Transformer

    out = []
    per_zone = 7 * 28  # 7 eastings x 28 northings (3.3e6 .. 6.0e6 m)
    for k in range(n_tiles):
        zone = 29 + (k // per_zone) % 30
        col, row = (k % per_zone) % 7, (k % per_zone) // 7
        east, north = 100_000.0 + 100_000.0 * col, 3_400_000.0 + 100_000.0 * row
        epsg = 32600 + zone
        tf = Transformer.from_crs(epsg, 4326, always_xy=True)
        xs = np.array([east, east + 109_800, east + 109_800, east, east])
        ys = np.array([north, north, north - 109_800, north - 109_800, north])
        lon, lat = tf.transform(xs, ys)
        name = f"{zone:02d}{'CDEFGHJKLMNPQRSTUVWX'[row % 20]}{chr(65 + col)}{chr(65 + row % 26)}"
        out.append(
            {
                "zone": zone,
                "epsg": epsg,
                "east": east,
                "north": north,
                "name": name,
                "geometry": shapely.Polygon(zip(lon, lat, strict=True)),
            }  # fmt: skip
        )
    return out


def _band_metadata(rng: np.random.Generator, east: np.ndarray, north: np.ndarray) -> pa.Array:
    """One ``{band}_metadata`` column for len(east) records, built column-wise."""
    from xarray_rasteret.collection import BAND_METADATA_TYPE

    n = len(east)
    counts = rng.integers(200_000, 1_800_000, size=(n, TILES))
    header = 16_384 + rng.integers(0, 4096, size=(n, 1))
    offsets = header + np.cumsum(counts + 8, axis=1) - counts - 4
    size = offsets[:, -1] + counts[:, -1] + 4

    def lists(values: np.ndarray, typ: pa.DataType) -> pa.Array:
        m = values.shape[1]
        return pa.ListArray.from_arrays(
            pa.array(np.arange(0, n * m + 1, m, dtype=np.int32)),
            pa.array(values.ravel(), typ),
        )

    def full(value: Any, typ: pa.DataType) -> pa.Array:
        return pa.array([value] * n, typ)

    zeros = np.zeros(n)
    transform = np.stack([zeros + 10, zeros, east, zeros, zeros - 10, north], axis=1)
    etags = [f'"{v:032x}"' for v in rng.integers(0, 2**62, size=n)]
    empty = pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.int32()))
    arrays = {
        "image_width": full(SIZE, pa.int32()), "image_height": full(SIZE, pa.int32()),
        "tile_width": full(TILE, pa.int32()), "tile_height": full(TILE, pa.int32()),
        "dtype": full("uint16", pa.string()), "transform": lists(transform, pa.float64()),
        "predictor": full(2, pa.int32()), "compression": full(8, pa.int32()),
        "tile_offsets": lists(offsets, pa.int64()), "tile_byte_counts": lists(counts, pa.int64()),
        "pixel_scale": lists(np.stack([zeros + 10, zeros + 10, zeros], axis=1), pa.float64()),
        "tiepoint": lists(np.stack([zeros, zeros, zeros, east, north, zeros], 1), pa.float64()),
        "nodata": full(0.0, pa.float64()), "samples_per_pixel": full(1, pa.int32()),
        "planar_configuration": full(1, pa.int32()), "photometric": full(1, pa.int32()),
        "extra_samples": empty, "byte_order": full("<", pa.string()),
        "bits_per_sample": full(16, pa.int32()), "jpeg_tables": full(None, pa.binary()),
        "lerc_parameters": full(None, pa.list_(pa.int32())), "scale": full(1.0, pa.float64()),
        "offset": full(0.0, pa.float64()), "band_index": full(0, pa.int32()),
        "tiled": full(True, pa.bool_()), "fill_order": full(1, pa.int32()),
        "ycbcr": full(None, pa.list_(pa.float64())),
        "overviews": pa.array([[]] * n, BAND_METADATA_TYPE.field("overviews").type),
        "file_size": pa.array(size, pa.int64()), "etag": pa.array(etags, pa.string()),
    }  # fmt: skip
    return pa.StructArray.from_arrays(
        # Fields the schema gains later (an internal mask) are null: no such thing here.
        [arrays.get(f.name, pa.nulls(n, f.type)) for f in BAND_METADATA_TYPE],
        fields=list(BAND_METADATA_TYPE),
    )


def _plan(records: int) -> tuple[int, int]:
    """(tiles, acquisitions per tile) for about ``records`` records."""
    n_tiles = max(2, records // 500)
    return n_tiles, max(1, records // n_tiles)


def generate(records: int, *, chunk: int = 20_000, seed: int = 0) -> Iterator[pa.Table]:
    """Yield the synthetic collection of ``records`` records as tables of <= ``chunk`` rows.

    Rows come tile by tile, each tile's acquisitions in time order (the insertion
    order of a build over a STAC search of one tile after another).
    """
    import shapely

    n_tiles, per_tile = _plan(records)
    tiles = _tiles(n_tiles)
    rng = np.random.default_rng(seed)
    tile_of = np.repeat(np.arange(n_tiles), per_tile)
    step = np.tile(np.arange(per_tile), n_tiles)
    for start in range(0, len(tile_of), chunk):
        t, s = tile_of[start : start + chunk], step[start : start + chunk]
        when = _T0 + (s * DAYS * 86_400 + t * 7).astype("timedelta64[s]")
        days = when.astype("datetime64[D]").astype(str)
        sat = np.where(s % 2 == 0, "S2A", "S2B")
        names = [tiles[i]["name"] for i in t]
        ids = [
            f"{a}_{nm}_{d.replace('-', '')}_0_L2A"
            for a, nm, d in zip(sat, names, days, strict=True)
        ]
        geoms = np.array([tiles[i]["geometry"] for i in t], dtype=object)
        bounds = shapely.bounds(geoms)
        east = np.array([tiles[i]["east"] for i in t])
        north = np.array([tiles[i]["north"] for i in t])
        epsg = np.array([tiles[i]["epsg"] for i in t], np.int32)
        root = "https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs"
        prefix = [
            f"{root}/{nm[:2]}/{nm[2]}/{nm[3:]}/{d[:4]}/{int(d[5:7])}/{i}/"
            for nm, d, i in zip(names, days, ids, strict=True)
        ]
        assets = pa.StructArray.from_arrays(
            [
                pa.StructArray.from_arrays(
                    [
                        pa.array([p + b + ".tif" for p in prefix]),
                        pa.array(np.zeros(len(t), np.int32)),
                    ],
                    names=["href", "band_index"],
                )
                for b in BANDS
            ],
            names=list(BANDS),
        )
        cols: dict[str, Any] = {
            "id": pa.array(ids),
            "datetime": pa.array(when, pa.timestamp("us", tz="UTC")),
            "geometry": pa.array(shapely.to_wkb(geoms), pa.binary()),
            "bbox": pa.StructArray.from_arrays(
                [pa.array(bounds[:, k]) for k in range(4)], names=["xmin", "ymin", "xmax", "ymax"]
            ),
            "assets": assets,
            "proj:epsg": pa.array(epsg),
            "crs": pa.array([f"EPSG:{e}" for e in epsg]),
            "eo:cloud_cover": pa.array(rng.uniform(0, 100, len(t)).round(2)),
        }
        for b in BANDS:
            cols[b + "_metadata"] = _band_metadata(rng, east, north)
        yield pa.table(cols)


def query_of(records: int) -> dict[str, Any]:
    """The query: a 0.05 degree box at the centre of a middle tile, one month, cloud < 50."""
    n_tiles, _ = _plan(records)
    tile = _tiles(n_tiles)[n_tiles // 2]
    cx, cy = tile["geometry"].centroid.coords[0]
    return {
        "bbox": [cx - 0.025, cy - 0.025, cx + 0.025, cy + 0.025],
        "time": ["2019-06", "2019-06"],
        "cloud_cover_lt": 50,
    }


def write(records: int, path: Path) -> float:
    """Write the synthetic collection with the package's writer; seconds taken."""
    import xarray_rasteret.collection as coll_mod

    t0 = time.perf_counter()
    writer = getattr(coll_mod, "write_collection", None)
    if writer is not None:  # the streaming writer: chunks as they come
        writer(generate(records), path)
    else:  # before it: one table in memory
        coll_mod.Collection(pa.concat_tables(generate(records))).to_parquet(path)
    return time.perf_counter() - t0


def _measure(target: str, query: dict[str, Any]) -> None:
    """In this (fresh) process: open + filter + sources of the selection; print JSON."""

    # Imports out of the timing: they cost the same whatever the index.
    import pandas  # noqa: F401
    import pyproj  # noqa: F401
    import shapely  # noqa: F401

    import xarray_rasteret as xr_rt
    import xarray_rasteret.collection  # noqa: F401
    import xarray_rasteret.storage  # noqa: F401

    t0 = time.perf_counter()
    coll = xr_rt.load(target)
    sel = coll.filter(
        bbox=query["bbox"], time=tuple(query["time"]), cloud_cover_lt=query["cloud_cover_lt"]
    )
    ids = sel.ids
    srcs = sel.sources("B04")
    dt = time.perf_counter() - t0
    rss = _peak_rss()
    print(json.dumps({"seconds": dt, "rss": rss, "selected": len(ids), "sources": len(srcs)}))


def _peak_rss() -> int:
    """This process's peak RSS in bytes.

    ``/proc/self/status`` VmHWM where there is one: ``getrusage``'s ``ru_maxrss``
    carries over the parent's peak through fork and exec on Linux.
    """
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _run_measure(target: str, query: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--_measure", target, json.dumps(query)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"measurement of {target} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _bench(records: int, root: Path, repeats: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from servers import RangeHTTPServer

    path = root / f"s2-{records}.parquet"
    wrote = write(records, path)
    size = sum(f.stat().st_size for f in ([path] if path.is_file() else path.rglob("*.parquet")))
    query = query_of(records)
    local = min(
        (_run_measure(str(path), query) for _ in range(repeats)), key=lambda r: r["seconds"]
    )
    with RangeHTTPServer(root) as server:
        url = server.url(path.name)
        remote = []
        for _ in range(repeats):
            server.reset()
            r = _run_measure(url, query)
            r["requests"], r["bytes"] = server.stats.requests, server.stats.bytes_sent
            remote.append(r)
    http = min(remote, key=lambda r: r["seconds"])
    return {"records": records, "file_bytes": size, "write_s": wrote, "local": local, "http": http,
            "per_record_band": size / records / len(BANDS)}  # fmt: skip


def _bench_hive(records: int, root: Path, repeats: int) -> dict[str, Any]:
    """The same index as ``year=/month=`` folders (with ``_metadata``), the same query."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import pyarrow.compute as pc

    from servers import RangeHTTPServer
    from xarray_rasteret.collection.parquet import write_partitioned

    table = pa.concat_tables(generate(records))
    when = table.column("datetime")
    table = table.append_column("year", pc.cast(pc.year(when), pa.int32()))
    table = table.append_column("month", pc.cast(pc.month(when), pa.int32()))
    folder = root / f"s2-{records}-hive"
    t0 = time.perf_counter()
    write_partitioned(table, folder, ["year", "month"], manifest=True)
    wrote = time.perf_counter() - t0
    del table
    files = list(folder.rglob("*.parquet"))
    size = sum(f.stat().st_size for f in files)
    query = query_of(records)
    local = min(
        (_run_measure(str(folder), query) for _ in range(repeats)), key=lambda r: r["seconds"]
    )
    with RangeHTTPServer(root) as server:
        remote = []
        for _ in range(repeats):
            server.reset()
            r = _run_measure(server.url(folder.name + "/"), query)
            r["requests"], r["bytes"] = server.stats.requests, server.stats.bytes_sent
            remote.append(r)
    return {"records": records, "files": len(files), "file_bytes": size, "write_s": wrote,
            "local": local, "http": min(remote, key=lambda r: r["seconds"])}  # fmt: skip


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _table(rows: list[dict[str, Any]]) -> str:
    goals = {1000: (0.15, 300e6), 100_000: (0.15, 300e6), 1_000_000: (1.0, 1e9)}
    lines = ["| | now | goal |", "|---|---|---|"]
    for r in rows:
        n = r["records"]
        t_goal, rss_goal = goals.get(n, (1.0, 1e9))
        lines.append(
            f"| index size per record and band, {n} records | {r['per_record_band'] / 1e3:.2f} KB "
            f"({_mb(r['file_bytes'])} file, written in {r['write_s']:.1f} s) | <= 0.6 KB |"
        )
        loc, http = r["local"], r["http"]
        lines.append(
            f"| open + filter (bbox + month + cloud_cover_lt, {loc['selected']} selected), {n} "
            f"records, local | {loc['seconds']:.3f} s, {_mb(loc['rss'])} RSS | "
            f"< {t_goal} s, < {_mb(rss_goal)} |"
        )
        lines.append(
            f"| same over HTTP | {http['seconds']:.3f} s, {_mb(http['rss'])} RSS, "
            f"{http['requests']} requests, {_mb(http['bytes'])} read "
            f"({100 * http['bytes'] / r['file_bytes']:.1f}% of the file) | only the needed ranges |"
        )
        hive = r.get("hive")
        if hive is not None:
            loc, http = hive["local"], hive["http"]
            lines.append(
                f"| hive-partitioned (year=/month=, {hive['files']} files, "
                f"{_mb(hive['file_bytes'])}, written in {hive['write_s']:.1f} s): open + filter, "
                f"{loc['selected']} selected, local | {loc['seconds']:.3f} s, "
                f"{_mb(loc['rss'])} RSS | "
                f"< {t_goal} s, < {_mb(rss_goal)} |"
            )
            lines.append(
                f"| same over HTTP (through `_metadata`) | {http['seconds']:.3f} s, "
                f"{http['requests']} requests, {_mb(http['bytes'])} read "
                f"({100 * http['bytes'] / hive['file_bytes']:.1f}% of the files) | only the "
                "needed files and ranges |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: generate, write, measure, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, nargs="*", default=[1000, 100_000])
    p.add_argument("--million", action="store_true", help="also 1,000,000 records")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--hive", type=int, nargs="*", default=[100_000],
        help="sizes also measured as a year=/month= hive-partitioned folder",
    )  # fmt: skip
    p.add_argument("--dir", help="where to write the indexes (default: a temporary directory)")
    p.add_argument("--_measure", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._measure:
        _measure(args._measure[0], json.loads(args._measure[1]))
        return
    sizes = list(args.records) + ([1_000_000] if args.million else [])
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = []
        for n in sizes:
            rows.append(_bench(n, Path(tmp), args.repeats))
            if n in args.hive:
                rows[-1]["hive"] = _bench_hive(n, Path(tmp), args.repeats)
            print(json.dumps(rows[-1]), flush=True)
            for f in Path(tmp).iterdir():  # the next size needs the disk more
                shutil.rmtree(f) if f.is_dir() else os.remove(f)
    print(_table(rows))


if __name__ == "__main__":
    main()
