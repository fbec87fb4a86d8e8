"""xarray-rasteret: lazy, fast xarray access to indexed collections of cloud-optimized GeoTIFFs.

Names are imported on first use: xarray imports this package to list its
engines, and that must stay cheap.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("xarray-rasteret")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

_EXPORTS = {
    "Collection": "collection",
    "ReadFailure": "storage",
    "ReadStats": "storage",
    "build": "ingest",
    "build_async": "ingest",
    "get_gdf": "helpers",
    "get_numpy": "helpers",
    "get_xarray": "helpers",
    "sample_points": "helpers",
    "load": "collection",
    "read_stats": "storage",
    "track": "storage",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # names for type checkers; at run time __getattr__ imports them
    from .collection import Collection, load  # noqa: F401
    from .helpers import get_gdf, get_numpy, get_xarray, sample_points  # noqa: F401
    from .ingest import build, build_async  # noqa: F401
    from .storage import ReadFailure, ReadStats, read_stats, track  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xarray_rasteret' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
