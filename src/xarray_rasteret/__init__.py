"""xarray-rasteret: lazy, fast xarray access to indexed collections of cloud-optimized GeoTIFFs."""

from importlib.metadata import PackageNotFoundError, version

from .storage import ReadStats, read_stats, track

try:
    __version__ = version("xarray-rasteret")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["ReadStats", "__version__", "read_stats", "track"]
