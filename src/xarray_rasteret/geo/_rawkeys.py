"""GeoKeys read from the bytes of a TIFF header, for the keys async-tiff does not expose.

async-tiff's ``GeoKeyDirectory`` keeps a fixed set of keys and drops others
that change the CRS GDAL reports: ``GeogTOWGS84GeoKey`` (2062, the datum shift
GDAL keeps as a BoundCRS) and ``ProjRectifiedGridAngleGeoKey`` (3096, without
which a Hotine oblique Mercator's grid orientation is unknown).
:func:`geo_keys_from_header` parses the first IFD's GeoKeyDirectory (34735),
GeoDoubleParams (34736) and GeoAsciiParams (34737) from a header prefix the
caller already holds (no I/O here), bounded by the bytes given.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["EXTRA_KEYS", "geo_keys_from_header"]

#: GeoKey id -> name (async-tiff naming style) of the keys async-tiff drops.
EXTRA_KEYS = {
    2062: "geog_towgs84",
    3096: "proj_rectified_grid_angle",
    4096: "vertical",
    4097: "vertical_citation",
    4098: "vertical_datum",
    4099: "vertical_units",
}

_DIRECTORY, _DOUBLES, _ASCII = 34735, 34736, 34737
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8}


def geo_keys_from_header(data: bytes) -> dict[str, Any] | None:
    """The :data:`EXTRA_KEYS` GeoKeys of the first IFD, read from a file's first bytes.

    Parameters
    ----------
    data : bytes
        The start of the TIFF file (a header prefetch); it must hold the first
        IFD and the values of its GeoTIFF tags.

    Returns
    -------
    dict or None
        Key name to value (int, float, tuple of floats or str) for the keys
        found, and ``"geo_keys_complete": True`` (the whole directory was read,
        so a key not there is absent from the file); ``None`` when ``data`` is
        not a TIFF, has no GeoKeyDirectory in its first IFD, or does not hold
        all of it (then nothing is guessed).
    """
    try:
        tags = _first_ifd_geo_tags(data)
    except (struct.error, ValueError, IndexError):
        return None
    if tags is None or _DIRECTORY not in tags:
        return None
    directory = tags[_DIRECTORY]
    if len(directory) < 4:
        return None
    count = int(directory[3])
    if len(directory) < 4 + 4 * count:
        return None
    doubles = tags.get(_DOUBLES, ())
    text = tags.get(_ASCII, "")
    # Every key of the directory was seen: an absent key is absent (not dropped).
    out: dict[str, Any] = {"geo_keys_complete": True}
    for k in range(1, count + 1):
        key, location, n, offset = (int(v) for v in directory[4 * k : 4 * k + 4])
        name = EXTRA_KEYS.get(key)
        if name is None:
            continue
        if location == 0:
            out[name] = offset
        elif location == _DOUBLES and offset + n <= len(doubles):
            values = tuple(float(v) for v in doubles[offset : offset + n])
            out[name] = values[0] if n == 1 and key != 2062 else values
        elif location == _ASCII and isinstance(text, str) and offset + n <= len(text):
            out[name] = text[offset : offset + n].rstrip("|\0")
    return out


def _first_ifd_geo_tags(data: bytes) -> dict[int, Any] | None:
    if data[:2] == b"II":
        order = "<"
    elif data[:2] == b"MM":
        order = ">"
    else:
        return None
    magic = struct.unpack_from(order + "H", data, 2)[0]
    if magic == 42:
        offset = struct.unpack_from(order + "I", data, 4)[0]
        count_fmt, entry_size, head, value_fmt, inline = "H", 12, 2, "I", 4
    elif magic == 43:
        offset = struct.unpack_from(order + "Q", data, 8)[0]
        count_fmt, entry_size, head, value_fmt, inline = "Q", 20, 8, "Q", 8
    else:
        return None
    n = struct.unpack_from(order + count_fmt, data, offset)[0]
    if offset + head + n * entry_size > len(data):
        return None
    tags: dict[int, Any] = {}
    for i in range(n):
        pos = offset + head + i * entry_size
        tag, kind = struct.unpack_from(order + "HH", data, pos)
        if tag not in (_DIRECTORY, _DOUBLES, _ASCII):
            continue
        count = (
            struct.unpack_from(order + value_fmt, data, pos + 4)[0]
            if magic == 43
            else (struct.unpack_from(order + "I", data, pos + 4)[0])
        )
        value_pos = pos + (12 if magic == 43 else 8)
        nbytes = _SIZES.get(kind, 0) * count
        if nbytes == 0:
            return None
        if nbytes > inline:
            value_pos = struct.unpack_from(order + value_fmt, data, value_pos)[0]
        if value_pos + nbytes > len(data):
            return None  # the values lie past the bytes given: do not guess
        raw = data[value_pos : value_pos + nbytes]
        if tag == _DIRECTORY and kind == 3:
            tags[tag] = struct.unpack(order + "H" * count, raw)
        elif tag == _DOUBLES and kind == 12:
            tags[tag] = struct.unpack(order + "d" * count, raw)
        elif tag == _ASCII and kind == 2:
            tags[tag] = raw.decode("latin-1")
    return tags
