"""Command line: ``xarray-rasteret demo | build | info``.

Errors are printed as one line, ``xarray-rasteret: error: <message>``, with exit
code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .collection import Collection

__all__ = ["main", "sample_items_path"]

PROG = "xarray-rasteret"
_DESCRIPTION = (
    "Index cloud-optimized GeoTIFFs into a collection (a GeoParquet file) and inspect it. "
    "Read the collection with xarray.open_dataset(path, engine='rasteret')."
)
_TIFF_SUFFIXES = (".tif", ".tiff")
# STAC item files (JSON, NDJSON) and collection tables: passed to build() as they are.
_TABLE_SUFFIXES = (".json", ".geojson", ".ndjson", ".jsonl", ".geojsonl", ".parquet")


class CLIError(Exception):
    """A mistake in the command line's input, reported without a traceback."""


def sample_items_path() -> Path:
    """Path of the embedded sample's STAC FeatureCollection (4 dates x bands B04, B08).

    Returns
    -------
    pathlib.Path
        ``items.json``; its asset hrefs are relative to it.
    """
    return Path(str(files("xarray_rasteret") / "data" / "sample" / "items.json"))


# -- demo ------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    scratch: AbstractContextManager[str | None] = (
        nullcontext(args.out) if args.out else tempfile.TemporaryDirectory(prefix="xrr-demo-")
    )
    with scratch as folder:
        out_dir = Path(str(folder))
        out_dir.mkdir(parents=True, exist_ok=True)
        _run_demo(out_dir / "sample_collection.parquet")
    return 0


def _run_demo(parquet: Path) -> None:
    import xarray as xr

    from . import build, track

    with track() as build_stats:
        collection = build(sample_items_path(), bands=["B04", "B08"])
        collection.to_parquet(parquet)
    print(f"built {parquet} ({len(collection)} records, bands {collection.bands}): {build_stats}")

    t0 = time.perf_counter()
    with xr.open_dataset(parquet, engine="rasteret", bands=["B04", "B08"]) as ds:
        print(f"opened lazily in {time.perf_counter() - t0:.3f} s:\n{ds}\n")
        # A 64 x 64 pixel AOI near the centre, every date, both bands.
        aoi = {"x": slice(224, 288), "y": slice(224, 288)}
        with track() as read_stats:
            series = ds.isel(aoi).load()
    red, nir = series.B04.astype("float32"), series.B08.astype("float32")
    ndvi = (nir - red) / (nir + red)
    for t, value in zip(series.time.values, ndvi.mean(("y", "x")).values, strict=True):
        print(f"  {str(t)[:10]}  mean NDVI {float(value):.4f}")
    print(f"read AOI time series {dict(series.sizes)}: {read_stats}")


# -- build -----------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) is not None and not text.startswith(
        "file://"
    )


def _expand_sources(sources: Sequence[str]) -> str | list[str]:
    """The ``build`` argument for the command line's sources.

    Folders become their ``.tif``/``.tiff`` files, glob patterns their matches
    (sorted); one Parquet file, or STAC JSON/NDJSON files, are passed on as they are.
    """
    from .errors import ObjectNotFoundError
    from .ingest._paths import expand_paths
    from .ingest._stac import is_item_file

    if all(s.lower().endswith(_TABLE_SUFFIXES) for s in sources) and (
        len(sources) == 1 or all(is_item_file(s) for s in sources)
    ):
        for s in sources:
            if not _is_url(s) and not Path(s).is_file():
                raise CLIError(f"no such file: {s!r}")
        return sources[0] if len(sources) == 1 else list(sources)
    for source in sources:
        if source.lower().endswith(_TABLE_SUFFIXES):
            raise CLIError(
                f"{source!r} is a STAC or Parquet file: pass it alone (STAC item files may "
                "go together), not with COG files"
            )
        if not _is_url(source) and not glob.has_magic(source) and not Path(source).exists():
            raise CLIError(f"no such file or folder: {source!r}")
    try:
        return expand_paths(sources)
    except ObjectNotFoundError as e:
        raise CLIError(str(e)) from None


def _group_by(pattern: str | None) -> Callable[[str], tuple[str, str]] | None:
    """A ``build(group_by=...)`` callable from a regex with groups ``id`` and ``band``."""
    if pattern is None:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise CLIError(f"--group-by '{pattern}' is not a regular expression: {exc}") from exc
    if not {"id", "band"} <= set(regex.groupindex):
        raise CLIError(
            f"--group-by '{pattern}' needs the named groups (?P<id>...) and (?P<band>...), "
            r"e.g. '(?P<id>.+)_(?P<band>B\d\d)\.tif$'"
        )

    def key(href: str) -> tuple[str, str]:
        name = href.replace("\\", "/").rsplit("/", 1)[-1]
        found = regex.search(name)
        if found is None:
            raise CLIError(f"file name {name!r} does not match --group-by '{pattern}'")
        return found["id"], found["band"]

    return key


def _storage_options(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--storage-options is not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(options, dict):
        raise CLIError(
            f"--storage-options must be a JSON object, like '{{\"anon\": true}}'; got {text!r}"
        )
    return options


def _bands(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [band for value in values for band in value.split(",") if band]


def _json_arg(option: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{option} is not valid JSON ({exc}): {text!r}") from exc


def _search(args: argparse.Namespace) -> int:
    """``build`` from a STAC API search: ``--stac-api URL`` or a catalogue id as source."""
    from . import build

    if len(args.source) > 1:
        raise CLIError(
            f"a search takes at most one source, a catalogue id; got {len(args.source)}"
        )
    collection = build(
        args.source[0] if args.source else None,
        stac_api=args.stac_api,
        collections=_bands(args.collections),
        bbox=args.bbox,
        datetime=args.datetime,
        query=_json_arg("--query", args.query),
        filter=_json_arg("--filter", args.filter),
        max_items=args.max_items,
        on_error=args.on_error,
        bands=_bands(args.bands),
        storage_options=_storage_options(args.storage_options),
        progress=not args.no_progress,
    )
    return _write(collection, args.output)


def _write(collection: Collection, output: str) -> int:
    if not _is_url(output):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    collection.to_parquet(output)
    print(f"wrote {output}:\n{_summary(collection)}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from . import build
    from .catalogues import registered

    searched = [o for o in ("collections", "bbox", "datetime", "query", "filter", "max_items")
                if getattr(args, o) is not None]
    if args.stac_api or (len(args.source) == 1 and args.source[0] in registered()):
        return _search(args)
    if not args.source:
        raise CLIError("build needs a SOURCE, or --stac-api URL to search a STAC API")
    if searched:
        raise CLIError(
            f"--{searched[0].replace('_', '-')} applies to a STAC API search (--stac-api, or a "
            f"catalogue id as SOURCE: {', '.join(registered())})"
        )
    source = _expand_sources(args.source)
    group_by = _group_by(args.group_by)
    from_files = isinstance(source, str) or (bool(source) and source[0].endswith(_TABLE_SUFFIXES))
    given = [o for o, v in (("--group-by", group_by), ("--datetime-from", args.datetime_from))
             if v is not None]
    if from_files and given:
        raise CLIError(
            f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to COG files, "
            "not to STAC or Parquet files (those carry their records' bands and times)"
        )
    if not from_files and args.base_href is not None:
        raise CLIError("--base-href applies to STAC item files only")
    collection = build(
        source,
        bands=_bands(args.bands),
        group_by=group_by,
        datetime_from=args.datetime_from,
        base_href=args.base_href,
        storage_options=_storage_options(args.storage_options),
        progress=not args.no_progress,
        on_error=args.on_error,
    )
    return _write(collection, args.output)


# -- info ------------------------------------------------------------------------------


def _summary(collection: Collection) -> str:
    """Records, extent, time range, CRS counts and per band facts (of its first record)."""
    from .collection.summary import summary_text

    return summary_text(collection)


def _info(args: argparse.Namespace) -> int:
    from . import load

    collection = load(args.collection, storage_options=_storage_options(args.storage_options))
    print(f"{args.collection}\n{_summary(collection)}")
    return 0


# -- main ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog=PROG, description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="index the embedded sample and read an AOI time series")
    demo.add_argument("--out", help="folder to keep the sample collection in (default: a "
                      "temporary folder, removed at the end)")
    demo.set_defaults(func=_demo)

    b = sub.add_parser(
        "build", help="index COGs or STAC items into a collection Parquet file",
        description="Parse the COG headers of SOURCE once and write the collection.",
        epilog=r"example: xarray-rasteret build 'scenes/*.tif' -o s2.parquet "
        r"--group-by '(?P<id>.+)_(?P<band>B\d\d)\.tif$'",
    )
    b.add_argument("source", nargs="*", help="COG paths/URLs, folders (their .tif files), glob "
                   "patterns, STAC item files (a JSON item, list or FeatureCollection, or "
                   "NDJSON; paths or URLs), one Parquet table, or a catalogue id to search "
                   "(earthsearch/sentinel-2-l2a, pc/landsat-c2-l2, ...)")
    b.add_argument("--output", "-o", required=True, help="the collection Parquet file to write")
    b.add_argument("--bands", nargs="+", metavar="BAND",
                   help="asset keys to index (STAC, tables) or band names to keep (COG files); "
                   "space or comma separated")
    b.add_argument("--group-by", metavar="REGEX",
                   help="group single-band files into records: a regex over the file name with "
                   "the named groups 'id' (the record) and 'band'")
    b.add_argument("--datetime-from", metavar="PATTERN",
                   help="take each record's time from its file names: a regex with a named "
                   r"group 'date' (YYYYMMDD) or 'datetime', e.g. '_(?P<date>\d{8})_', or a "
                   "strftime format such as '%%Y%%m%%d'")
    b.add_argument("--base-href", metavar="URL",
                   help="folder or URL that relative asset hrefs of STAC items resolve against "
                   "(default: the item's self link, else its file)")
    b.add_argument("--storage-options", metavar="JSON",
                   help='options of the remote store, e.g. \'{"anon": true}\'')
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="skip: leave out records whose headers cannot be read, with a warning "
                   "naming them (default: raise)")
    search = b.add_argument_group("STAC API search (with --stac-api, or a catalogue id as SOURCE)")
    search.add_argument("--stac-api", metavar="URL", help="the STAC API to search (overrides a "
                   "catalogue's URL)")
    search.add_argument("--collections", nargs="+", metavar="ID", help="collection ids to search")
    search.add_argument("--bbox", nargs=4, type=float, metavar=("W", "S", "E", "N"),
                   help="lon/lat bounds the items must intersect")
    search.add_argument("--datetime", metavar="INTERVAL",
                   help="a time or interval, e.g. 2024-05-01/2024-05-31 or 2024-05-01/..")
    search.add_argument("--query", metavar="JSON",
                   help='STAC query terms, e.g. \'{"eo:cloud_cover": {"lt": 20}}\'')
    search.add_argument("--filter", metavar="JSON", help="a CQL2-JSON filter")
    search.add_argument("--max-items", type=int, metavar="N", help="stop after N items")
    b.set_defaults(func=_build)

    info = sub.add_parser("info", help="summarise a collection: extent, time, CRS, bands")
    info.add_argument("collection", help="a collection Parquet file (path or URL)")
    info.add_argument("--storage-options", metavar="JSON", help="options of the remote store")
    info.set_defaults(func=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line interface.

    Parameters
    ----------
    argv
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0, or 1 after an error (printed as one line on stderr).
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
