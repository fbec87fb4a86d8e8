"""Errors raised by xarray-rasteret.

Every error derives from :class:`RasteretError`; where a builtin exception
means the same thing, the subclass derives from it too, so callers can catch
either (``except KeyError`` keeps working for an unknown band).
"""

from __future__ import annotations

__all__ = [
    "AOIOutsideDataError",
    "BandNotFoundError",
    "MissingMetadataError",
    "NoRecordSelectedError",
    "NotATiffError",
    "ObjectChangedError",
    "ObjectNotFoundError",
    "PermissionDeniedError",
    "RasteretError",
    "RasteretWarning",
    "ReadFailedError",
    "ReadFailureWarning",
    "ReprojectionRequiredError",
    "TileDecodeError",
    "TruncatedFileError",
    "UnsupportedTiffError",
]


class RasteretError(Exception):
    """Root of every error raised by xarray-rasteret."""


class RasteretWarning(UserWarning):
    """Root of the warnings of xarray-rasteret that are about the data read."""


class ReadFailureWarning(RasteretWarning):
    """Under ``on_error="nodata"``, tiles could not be read and hold nodata instead.

    The message names each object and the error; ``read_stats().failures`` (or
    a ``track()`` block's ``failures``) lists every failed byte range and tile.
    """


class BandNotFoundError(RasteretError, KeyError, ValueError):
    """A requested band is not in the collection (the message lists the bands there are).

    Also a ``ValueError``, as rasteret raises for an unknown band, so code written
    for either library catches it.
    """

    def __str__(self) -> str:
        # KeyError quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else ""


class MissingMetadataError(RasteretError, ValueError):
    """A record lacks the header metadata a read of one of its bands needs."""


class UnsupportedTiffError(RasteretError, NotImplementedError):
    """The TIFF uses a feature (codec, layout, transform) that cannot be read exactly."""


class NotATiffError(RasteretError, ValueError):
    """The object is not a TIFF file."""


class TileDecodeError(RasteretError, ValueError):
    """A tile's stored bytes do not decode to the tile its header describes (corrupt data)."""


class TruncatedFileError(RasteretError, OSError):
    """The object is shorter than its header says: a tile lies past its end."""


class ObjectNotFoundError(RasteretError, FileNotFoundError):
    """The object (file, URL, S3 key) does not exist: HTTP 404 or a missing path."""


class PermissionDeniedError(RasteretError, PermissionError):
    """Access was refused: HTTP 401/403 (credentials, requester-pays, URL signing)."""


class ReadFailedError(RasteretError, OSError):
    """A byte-range read failed after every retry (the message names URL, range and cause)."""


class ObjectChangedError(RasteretError, OSError):
    """The object differs from the one indexed (size or ETag changed since build)."""


class AOIOutsideDataError(RasteretError, ValueError):
    """The area of interest does not intersect any record of the collection."""


class NoRecordSelectedError(RasteretError, ValueError):
    """No record of the collection is left after the time and filter selection."""


class ReprojectionRequiredError(RasteretError, ValueError):
    """Records are on different pixel grids and no common target grid was given."""
