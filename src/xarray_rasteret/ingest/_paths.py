"""Local sources as users write them: folders, glob patterns and plain paths.

``build("scenes/")``, ``build("scenes/*_B04.tif")`` and the command line's
sources mean the GeoTIFFs they name; a folder of Parquet files is a partitioned
collection (rasteret writes ``year=/month=`` folders). URLs pass through as they
are: their stores list nothing.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from .._hrefs import COLLECTION_SUFFIXES, TIFF_SUFFIXES, is_local
from ..errors import ObjectNotFoundError

__all__ = ["expand_paths", "is_table_folder"]


def is_table_folder(path: str) -> bool:
    """Whether ``path`` is a local folder holding Parquet files (a partitioned collection)."""
    folder = Path(path)
    return folder.is_dir() and any(
        p.suffix.lower() in COLLECTION_SUFFIXES for p in folder.rglob("*") if p.is_file()
    )


def expand_paths(sources: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The GeoTIFF paths/URLs ``sources`` name, in order (each folder's and pattern's sorted).

    Raises
    ------
    ObjectNotFoundError
        For a local path that does not exist, a pattern that matches nothing, or a
        folder without ``.tif``/``.tiff`` files (the message names it).
    """
    out: list[str] = []
    for source in sources:
        s = os.fspath(source)
        if not is_local(s):
            out.append(s)
        elif Path(s).is_dir():
            found = sorted(
                str(p) for p in Path(s).iterdir() if p.suffix.lower() in TIFF_SUFFIXES
            )
            if not found:
                raise ObjectNotFoundError(
                    f"folder {s!r} holds no .tif or .tiff file; pass the GeoTIFFs' paths, "
                    "a glob such as 'scenes/*.tif', or STAC items"
                )
            out.extend(found)
        elif glob.has_magic(s):
            found = sorted(glob.glob(s, recursive=True))
            if not found:
                raise ObjectNotFoundError(f"no file matches {s!r}; check the pattern")
            out.extend(found)
        else:
            out.append(s)
    return out
