"""Command line: ``xarray-rasteret demo | build | info``."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

__all__ = ["main", "sample_items_path"]


def sample_items_path() -> Path:
    """Path of the embedded sample's STAC FeatureCollection (4 dates x bands B04, B08).

    Returns
    -------
    pathlib.Path
        ``items.json``; its asset hrefs are relative to it.
    """
    return Path(str(files("xarray_rasteret") / "data" / "sample" / "items.json"))


def _demo(args: argparse.Namespace) -> int:
    import xarray as xr

    from . import build, track

    out_dir = Path(args.out or tempfile.mkdtemp(prefix="xarray-rasteret-demo-"))
    parquet = out_dir / "sample_collection.parquet"
    with track() as build_stats:
        collection = build(sample_items_path(), bands=["B04", "B08"])
        collection.to_parquet(parquet)
    print(f"built {parquet} ({len(collection)} records, bands {collection.bands}): {build_stats}")

    t0 = time.perf_counter()
    ds = xr.open_dataset(parquet, engine="rasteret", bands=["B04", "B08"])
    print(f"opened lazily in {time.perf_counter() - t0:.3f} s:\n{ds}\n")

    # A 64 x 64 pixel AOI near the centre, every date, both bands.
    aoi = {"x": slice(224, 288), "y": slice(224, 288)}
    with track() as read_stats:
        series = ds.isel(aoi).load()
    ndvi = (series.B08.astype("float32") - series.B04) / (series.B08.astype("float32") + series.B04)
    for t, value in zip(series.time.values, ndvi.mean(("y", "x")).values, strict=True):
        print(f"  {str(t)[:10]}  mean NDVI {float(value):.4f}")
    print(f"read AOI time series {dict(series.sizes)}: {read_stats}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from . import build

    collection = build(args.source, bands=args.bands or None, progress=True)
    collection.to_parquet(args.output)
    print(f"wrote {args.output}: {collection!r}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from . import load

    print(repr(load(args.collection)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line interface.

    Parameters
    ----------
    argv
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code.
    """
    parser = argparse.ArgumentParser(prog="xarray-rasteret", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="index the embedded sample and read an AOI time series")
    demo.add_argument("--out", help="directory for the sample collection (default: a temp dir)")
    demo.set_defaults(func=_demo)
    b = sub.add_parser("build", help="index COGs or STAC items into a collection Parquet file")
    b.add_argument("source", nargs="+", help="COG paths/URLs or a STAC FeatureCollection JSON")
    b.add_argument("--output", "-o", required=True)
    b.add_argument("--bands", nargs="*")
    b.set_defaults(func=_build)
    info = sub.add_parser("info", help="summarise a collection")
    info.add_argument("collection")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    if args.command == "build" and len(args.source) == 1 and args.source[0].endswith(".json"):
        args.source = args.source[0]
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
