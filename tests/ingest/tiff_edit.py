"""Edit the first IFD of a classic little-endian TIFF in place, as other writers leave them.

Tests use it to make the real-world oddities GDAL's writers never produce: a
tag missing, renumbered (tile offsets in the strip tags) or given another
inline value. Entries stay sorted by tag, as readers expect.
"""

from __future__ import annotations

import os
import struct


def _entries(buf: bytearray) -> tuple[int, list[list[int]]]:
    assert buf[:4] == b"II*\x00", "only classic little-endian TIFFs"
    at = struct.unpack_from("<I", buf, 4)[0]
    n = struct.unpack_from("<H", buf, at)[0]
    rows = [list(struct.unpack_from("<HHI4s", buf, at + 2 + 12 * k)) for k in range(n)]
    return at, rows


def _write(buf: bytearray, at: int, rows: list[list[int]], old_n: int) -> None:
    nxt = struct.unpack_from("<I", buf, at + 2 + 12 * old_n)[0]
    assert len(rows) <= old_n, "an IFD cannot grow in place"
    rows = sorted(rows, key=lambda r: r[0])
    struct.pack_into("<H", buf, at, len(rows))
    for k, (tag, typ, count, field) in enumerate(rows):
        struct.pack_into("<HHI4s", buf, at + 2 + 12 * k, tag, typ, count, field)
    struct.pack_into("<I", buf, at + 2 + 12 * len(rows), nxt)


def edit_first_ifd(
    path: str | os.PathLike[str],
    *,
    drop: tuple[int, ...] = (),
    renumber: dict[int, int] | None = None,
    short: dict[int, int] | None = None,
) -> None:
    """Drop tags, renumber tags, or set the inline SHORT value of tags of IFD 0."""
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    at, rows = _entries(buf)
    n = len(rows)
    rows = [r for r in rows if r[0] not in drop]
    for r in rows:
        if renumber and r[0] in renumber:
            r[0] = renumber[r[0]]
        if short and r[0] in short:
            r[1], r[2], r[3] = 3, 1, struct.pack("<HH", short[r[0]], 0)
    _write(buf, at, rows, n)
    with open(path, "wb") as f:
        f.write(buf)


def add_to_first_ifd(
    path: str | os.PathLike[str],
    *,
    shorts: dict[int, int] | None = None,
    longs: dict[int, int] | None = None,
    ascii: dict[int, str] | None = None,
) -> None:
    """Add (or replace) tags of IFD 0: it is copied to the end of the file with them."""
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    at, rows = _entries(buf)
    n = len(rows)
    nxt = struct.unpack_from("<I", buf, at + 2 + 12 * n)[0]
    new: dict[int, list] = {r[0]: r for r in rows}
    for tag, v in (shorts or {}).items():
        new[tag] = [tag, 3, 1, struct.pack("<HH", v, 0)]
    for tag, v in (longs or {}).items():
        new[tag] = [tag, 4, 1, struct.pack("<I", v)]
    for tag, text in (ascii or {}).items():
        value = text.encode() + b"\0"
        if len(buf) % 2:
            buf += b"\0"
        if len(value) <= 4:
            new[tag] = [tag, 2, len(value), value.ljust(4, b"\0")]
        else:
            new[tag] = [tag, 2, len(value), struct.pack("<I", len(buf))]
            buf += value
    if len(buf) % 2:
        buf += b"\0"
    here = len(buf)
    out = sorted(new.values(), key=lambda r: r[0])
    buf += struct.pack("<H", len(out))
    for tag, typ, count, field in out:
        buf += struct.pack("<HHI4s", tag, typ, count, field)
    buf += struct.pack("<I", nxt)
    struct.pack_into("<I", buf, 4, here)
    with open(path, "wb") as f:
        f.write(buf)
