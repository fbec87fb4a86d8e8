"""Walk a TIFF's IFD chain with bounded reads before the header parser sees it.

async-tiff trusts the counts and offsets of a header: a tag claiming 2^31
values is allocated before it is read (a Rust allocation abort kills the
process), an IFD chain that loops is followed forever, and SamplesPerPixel
65535 becomes 65535 bands. :func:`check_ifd_chain` reads the same bytes first
(classic and BigTIFF, both byte orders) and refuses such a file with an error
naming it and the problem, so that what reaches async-tiff is bounded.

Nothing here allocates in proportion to a count before checking it: every
read is bounded by :data:`MAX_TAG_BYTES` and by the file's size when known.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import NotATiffError, TruncatedFileError, UnsupportedTiffError

__all__ = [
    "MAX_IFDS",
    "MAX_SAMPLES",
    "MAX_TAG_BYTES",
    "Chain",
    "Read",
    "check_ifd_chain",
    "walk_and_complete",
    "walk_ifd_chain",
]

MAX_IFDS = 4096
"""IFDs followed at most. A COG has one per overview and mask (a few dozen at
most); a longer chain is corrupt or hostile, and each IFD costs a parse."""

MAX_SAMPLES = 1024
"""SamplesPerPixel accepted at most. Every sample becomes a band column of the
collection; imaging spectrometers store a few hundred bands (AVIRIS 224, EnMAP
246), so 1024 leaves room while 65535 (a flipped byte) is refused."""

MAX_TAG_BYTES = 256 << 20
"""Bytes one tag's values may take: TileOffsets of a 4-million-tile image as LONG8
fill 32 MiB, so more is a corrupt count, whatever the file's size."""

MAX_ENTRIES = 4096
"""Entries one IFD may have (BigTIFF counts them in 64 bits); the TIFF and
GeoTIFF tags in use number well under a hundred."""

Read = Callable[[int, int], Awaitable[bytes]]
"""``read(start, end)``: the bytes of a range, short only at the end of the file."""

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TYPE_SIZES.update({16: 8, 17: 8, 18: 8})  # BigTIFF LONG8, SLONG8, IFD8
_INTEGER_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}

_NAMES = {
    256: "ImageWidth",
    257: "ImageLength",
    258: "BitsPerSample",
    262: "PhotometricInterpretation",
    266: "FillOrder",
    273: "StripOffsets",
    277: "SamplesPerPixel",
    278: "RowsPerStrip",
    279: "StripByteCounts",
    284: "PlanarConfiguration",
    292: "T4Options",
    317: "Predictor",
    322: "TileWidth",
    323: "TileLength",
    324: "TileOffsets",
    325: "TileByteCounts",
    332: "InkSet",
    34735: "GeoKeyDirectory",
    34736: "GeoDoubleParams",
    34737: "GeoAsciiParams",
}
_SCALARS = (256, 257, 277, 278, 284, 322, 323)
_FACTS = (262, 266, 292, 317, 332)
"""Integer tags read when they hold one inline integer: Photometric, what the header
parser does not report (FillOrder 266, T4Options 292, InkSet 332), and the Predictor
(317), which it reports as none when the value is unknown."""
_PHOTOMETRICS = {
    0: "WhiteIsZero", 1: "BlackIsZero", 2: "RGB", 3: "Palette", 4: "TransparencyMask",
    5: "Separated (CMYK)", 6: "YCbCr", 8: "CIELab",
}  # fmt: skip
"""The PhotometricInterpretation values the header parser (async-tiff) knows; any other
makes it panic, and a panic leaves its runtime unusable for the rest of the process."""
_OTHER_PHOTOMETRICS = {
    7: "not defined by TIFF", 9: "ICCLab", 10: "ITULab", 32803: "CFA (raw camera)",
    32844: "LogL", 32845: "LogLuv", 34892: "LinearRaw",
}  # fmt: skip
_FIX = "rewrite it (e.g. gdal_translate -of COG) or leave it out of the collection"


def _tag(tag: int) -> str:
    name = _NAMES.get(tag)
    return f"tag {tag} ({name})" if name else f"tag {tag}"


@dataclass(frozen=True)
class _Format:
    """Byte order and offset width of a classic TIFF or a BigTIFF."""

    order: str
    big: bool

    @property
    def word(self) -> str:
        return "Q" if self.big else "I"

    @property
    def inline(self) -> int:
        """Bytes of an entry's value field (values that fit are stored in it)."""
        return 8 if self.big else 4

    @property
    def entry(self) -> int:
        return 20 if self.big else 12

    @property
    def head(self) -> int:
        """Bytes of an IFD's entry count."""
        return 8 if self.big else 2

    def unpack(self, fmt: str, data: bytes, pos: int = 0) -> int:
        return int(struct.unpack_from(self.order + fmt, data, pos)[0])


@dataclass(frozen=True)
class _Entry:
    tag: int
    type: int
    count: int
    field: bytes

    def nbytes(self) -> int:
        return self.count * _TYPE_SIZES[self.type]


class _Walker:
    """Bounded reads of one file, with errors that name it."""

    def __init__(self, read: Read, size: int | None, name: str) -> None:
        self.read, self.size, self.name = read, size, name

    def corrupt(self, problem: str) -> NotATiffError:
        return NotATiffError(f"{self.name} is not a valid TIFF: {problem}; {_FIX}")

    def truncated(self, what: str, start: int, end: int, size: int) -> TruncatedFileError:
        return TruncatedFileError(
            f"{self.name} is truncated: bytes {start}..{end} ({what}) lie past the end of "
            f"the file ({size} bytes); copy the file again, or {_FIX}"
        )

    async def at(self, start: int, n: int, what: str) -> bytes:
        """``n`` bytes at ``start``, or an error if the file ends before them."""
        if self.size is not None and start + n > self.size:
            raise self.truncated(what, start, start + n, self.size)
        data = await self.read(start, start + n)
        if len(data) < n:
            raise self.truncated(what, start, start + n, start + len(data))
        return data

    async def header(self) -> tuple[_Format, int]:
        """The file's format and the offset of IFD 0."""
        head = await self.read(0, 16)
        if not head:
            raise NotATiffError(f"{self.name} is empty: not a TIFF file")
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        version = struct.unpack_from(order + "H", head, 2)[0] if order and len(head) >= 4 else None
        if version not in (42, 43):
            raise NotATiffError(f"{self.name} is not a TIFF file (it starts with {head[:4]!r})")
        fmt = _Format(order or "<", version == 43)
        need = 16 if fmt.big else 8
        if len(head) < need:
            raise self.truncated("the TIFF header", 0, need, len(head))
        if fmt.big and (fmt.unpack("H", head, 4) != 8 or fmt.unpack("H", head, 6) != 0):
            raise self.corrupt("the BigTIFF header gives an offset size other than 8")
        return fmt, fmt.unpack(fmt.word, head, 8 if fmt.big else 4)

    async def ifd(self, fmt: _Format, offset: int, index: int) -> tuple[list[_Entry], int]:
        """The entries of the IFD at ``offset`` and the offset of the next one."""
        what = f"IFD {index} (at byte {offset})"
        n = fmt.unpack("Q" if fmt.big else "H", await self.at(offset, fmt.head, what))
        if n == 0 or n > MAX_ENTRIES:
            raise self.corrupt(f"{what} claims {n} entries (1..{MAX_ENTRIES} expected)")
        body = await self.at(offset + fmt.head, n * fmt.entry + fmt.inline, what)
        entries = []
        for k in range(n):
            pos = k * fmt.entry
            tag, typ = fmt.unpack("H", body, pos), fmt.unpack("H", body, pos + 2)
            count = fmt.unpack(fmt.word, body, pos + 4)
            field = body[pos + 4 + fmt.inline : pos + fmt.entry]
            entries.append(_Entry(tag, typ, count, field))
        return entries, fmt.unpack(fmt.word, body, n * fmt.entry)

    def check_entry(self, fmt: _Format, e: _Entry, index: int) -> None:
        """Refuse an entry whose type is unknown or whose values cannot fit in the file."""
        where = f"{_tag(e.tag)} of IFD {index}"
        if e.type not in _TYPE_SIZES:
            # Only where the IFD cannot be served rewritten (walk_and_complete leaves
            # such tags out): refuse by name rather than pass on a parse that may abort.
            raise UnsupportedTiffError(
                f"{self.name}: {where} has field type {e.type}, which is not a TIFF type; "
                f"the header parser cannot skip it: {_FIX}"
            )
        nbytes = e.nbytes()
        limit = min(MAX_TAG_BYTES, self.size) if self.size is not None else MAX_TAG_BYTES
        if nbytes > limit:
            raise self.corrupt(
                f"{where} claims {e.count} values ({nbytes} bytes), more than "
                + (
                    f"the whole file ({self.size} bytes)"
                    if limit == self.size
                    else f"{limit} bytes"
                )
            )
        if nbytes > fmt.inline and self.size is not None:
            start = fmt.unpack(fmt.word, e.field)
            if start + nbytes > self.size:
                raise self.truncated(f"the values of {where}", start, start + nbytes, self.size)

    def scalar(self, fmt: _Format, e: _Entry, index: int) -> int:
        """The first value of an integer tag stored in its entry."""
        code = _INTEGER_TYPES.get(e.type)
        if code is None or e.count == 0 or e.nbytes() > fmt.inline:
            raise self.corrupt(
                f"{_tag(e.tag)} of IFD {index} is not one integer (type {e.type}, {e.count} values)"
            )
        return fmt.unpack(code, e.field)

    def check_image(self, fmt: _Format, entries: list[_Entry], index: int) -> dict[int, int]:
        """Check the image geometry of one IFD and its tile/strip tables against it.

        Returns the values of the :data:`_SCALARS` and :data:`_FACTS` tags it has.
        """
        tags = {e.tag: e for e in entries}
        value = {t: self.scalar(fmt, tags[t], index) for t in _SCALARS if t in tags}
        for t in _FACTS:
            e = tags.get(t)
            if e is not None and e.type in _INTEGER_TYPES and 0 < e.nbytes() <= fmt.inline:
                value[t] = fmt.unpack(_INTEGER_TYPES[e.type], e.field)
        photometric = value.get(262)
        if photometric is not None and photometric not in _PHOTOMETRICS:
            what = _OTHER_PHOTOMETRICS.get(photometric, "unknown")
            raise UnsupportedTiffError(
                f"{self.name}: IFD {index} has PhotometricInterpretation {photometric} "
                f"({what}), which is not supported; convert it, e.g. "
                f"`gdal_translate -co COMPRESS=DEFLATE in.tif out.tif` (GDAL reads it)"
            )
        width, height = value.get(256, 0), value.get(257, 0)
        if not width or not height:
            raise self.corrupt(
                f"IFD {index} has no image size (ImageWidth {width}, ImageLength {height})"
            )
        spp = value.get(277, 1)
        if spp == 0:
            raise self.corrupt(f"IFD {index} has SamplesPerPixel 0")
        if spp > MAX_SAMPLES:
            raise UnsupportedTiffError(
                f"{self.name}: IFD {index} has SamplesPerPixel {spp}, more than the "
                f"{MAX_SAMPLES} bands supported (likely a corrupt header); {_FIX}"
            )
        planes = spp if value.get(284, 1) == 2 else 1
        if 322 in tags or 324 in tags:
            tw, th = value.get(322, 0), value.get(323, 0)
            if not tw or not th:
                raise self.corrupt(f"IFD {index} is tiled but its tile size is {tw}x{th}")
            grid = f"{math.ceil(width / tw)}x{math.ceil(height / th)} tiles"
            expected, tables = math.ceil(width / tw) * math.ceil(height / th) * planes, (324, 325)
            if 324 not in tags and 325 not in tags and 273 in tags:
                # Some writers store tile offsets in the strip tags; libtiff reads them.
                tables = (273, 279)
        else:
            rows = min(value.get(278) or height, height)
            grid = f"{math.ceil(height / rows)} strips of {rows} rows"
            expected, tables = math.ceil(height / rows) * planes, (273, 279)
        layout = f"the {width}x{height} image in {grid} x {planes} plane(s) needs {expected}"
        for t in tables:
            got = tags[t].count if t in tags else 0
            if got != expected:
                raise self.corrupt(f"IFD {index} has {got} {_NAMES[t]} entries, but {layout}")
        return value


async def check_ifd_chain(read: Read, size: int | None, name: str) -> int:
    """Walk every IFD of a TIFF and refuse it if any count or offset is unsafe.

    Returns the number of IFDs; :func:`walk_ifd_chain` also returns what it read.
    """
    return len(await walk_ifd_chain(read, size, name))


async def walk_ifd_chain(read: Read, size: int | None, name: str) -> list[dict[int, int]]:
    """Walk every IFD of a TIFF and refuse it if any count or offset is unsafe.

    Parameters
    ----------
    read
        ``await read(start, end)`` returns the bytes of that range (short only
        at the end of the file); reads are few and each bounded by
        :data:`MAX_TAG_BYTES` or the size of one IFD.
    size
        The file's size in bytes, or None if unknown (then only reads that
        come back short show where it ends).
    name
        The file as shown in messages (redacted).

    Returns
    -------
    list of dict
        Per IFD of the chain, in order, the integer tags it has among the image
        geometry, PhotometricInterpretation, FillOrder, T4Options and InkSet
        (tag -> value).

    Raises
    ------
    NotATiffError
        Not a TIFF, or a corrupt header: a loop in the IFD chain, a count
        larger than the file, tile or strip tables that do not match the image.
    TruncatedFileError
        The header or a tag's values lie past the end of the file.
    UnsupportedTiffError
        More than :data:`MAX_IFDS` IFDs, more than :data:`MAX_SAMPLES` samples,
        a tag of a type that is not a TIFF type, a PhotometricInterpretation
        the header parser does not know (LogLuv, ICCLab, CFA, ...), or an IFD
        without SamplesPerPixel or PhotometricInterpretation (which
        :func:`walk_and_complete` supplies instead).
    """
    chain = await walk_and_complete(read, size, name)
    if chain.virtual:
        missing = ", ".join(f"{t} in IFD {i}" for i, t, _ in chain.supplied)
        odd = ", ".join(f"{t} (type {typ}) in IFD {i}" for i, t, typ in chain.skipped)
        raise UnsupportedTiffError(
            f"{name}: the header parser (async-tiff) needs an IFD rewritten: "
            + "; ".join(p for p in (missing and f"it lacks {missing}",
                                    odd and f"it has tags of unknown types {odd}") if p)
            + f"; {_FIX}"
        )
    return chain.tags


@dataclass
class Chain:
    """What :func:`walk_and_complete` read, and the header bytes that supply missing tags."""

    tags: list[dict[int, int]]
    """Per IFD, in chain order, the integer tags read (see :func:`walk_ifd_chain`)."""
    patches: dict[int, bytes]
    """File offset -> bytes to serve there instead (pointers to the rewritten IFDs)."""
    virtual_start: int
    """Where :attr:`virtual` is served from: past the end of the file."""
    virtual: bytes
    """The rewritten IFDs, each with the tags it lacked."""
    supplied: list[tuple[int, str, int]]
    """(IFD index, tag name, value) of each tag supplied."""
    skipped: list[tuple[int, str, int]]
    """(IFD index, tag name, field type) of each tag left out for its unknown type."""


_DEFAULTED = (262, 277)
"""Tags async-tiff requires (it panics without them) that TIFF readers default."""


def _default(tag: int, value: dict[int, int]) -> int:
    if tag == 277:
        return 1  # the TIFF 6.0 default
    # PhotometricInterpretation has no default in TIFF 6.0; what is supplied only
    # names the samples' meaning (they are read as stored either way): RGB for 3
    # or more samples, else BlackIsZero.
    return 2 if value.get(277, 1) >= 3 else 1


def _entry_bytes(fmt: _Format, e: _Entry) -> bytes:
    return struct.pack(fmt.order + "HH" + fmt.word, e.tag, e.type, e.count) + e.field


def _rewritten(fmt: _Format, entries: list[_Entry], nxt: int) -> bytes:
    head = struct.pack(fmt.order + ("Q" if fmt.big else "H"), len(entries))
    body = b"".join(_entry_bytes(fmt, e) for e in sorted(entries, key=lambda e: e.tag))
    return head + body + struct.pack(fmt.order + fmt.word, nxt)


# Long because the chain walk, its checks and the rewriting of IFDs that lack a
# defaulted tag follow one pointer chain, which is clearest read in one loop.
async def walk_and_complete(read: Read, size: int | None, name: str) -> Chain:
    """Walk the chain like :func:`walk_ifd_chain`; supply the defaulted tags IFDs lack.

    An IFD without SamplesPerPixel or PhotometricInterpretation (libtiff and
    GDAL read them, with SamplesPerPixel 1) is rewritten with the tag added and
    served past the end of the file, the pointer to it patched: the header
    parser then sees a complete IFD whose other values are the file's own.

    Raises
    ------
    UnsupportedTiffError
        When a tag must be supplied but the end of the file is unknown (a store
        that reports no size), or the rewritten IFDs would lie past 4 GiB in a
        classic TIFF; and as :func:`walk_ifd_chain`.
    """
    ends: list[int] = []

    async def bounded(start: int, end: int) -> bytes:
        data = await read(start, end)
        if len(data) < end - start:
            ends.append(start + len(data))  # a short read: the end of the file
        return data

    walker = _Walker(bounded, size, name)
    fmt, offset = await walker.header()
    if offset == 0:
        raise walker.corrupt("the header points to no IFD")
    seen: set[int] = set()
    values: list[dict[int, int]] = []
    patches: dict[int, bytes] = {}
    virtual = bytearray()
    supplied: list[tuple[int, str, int]] = []
    skipped: list[tuple[int, str, int]] = []
    start: int | None = None
    pointer_at = 8 if fmt.big else 4  # where the offset of the next IFD is stored
    while offset:
        index = len(seen)
        if offset in seen:
            raise walker.corrupt(
                f"the IFD chain loops (IFD {index - 1} points back to the IFD at byte {offset})"
            )
        if index >= MAX_IFDS:
            raise UnsupportedTiffError(
                f"{name}: the IFD chain is longer than {MAX_IFDS} IFDs (a COG has one per "
                f"overview and mask; this one is likely corrupt); {_FIX}"
            )
        seen.add(offset)
        at = offset
        read_entries, offset = await walker.ifd(fmt, offset, index)
        # The TIFF spec says readers skip tags of unknown field types (libtiff warns
        # and does); async-tiff fails on them, so it is served the IFD without them.
        entries = [e for e in read_entries if e.type in _TYPE_SIZES]
        skipped.extend((index, _tag(e.tag), e.type) for e in read_entries if e not in entries)
        for e in entries:
            walker.check_entry(fmt, e, index)
        value = walker.check_image(fmt, entries, index)
        values.append(value)
        missing = [t for t in _DEFAULTED if t not in value]
        if not missing and len(entries) == len(read_entries):
            pointer_at = at + fmt.head + len(entries) * fmt.entry
            continue
        if start is None:
            end = size if size is not None else (min(ends) if ends else None)
            if end is None:
                what = (
                    f"has no {_NAMES[missing[0]]} tag ({missing[0]})"
                    if missing
                    else "has tags of unknown field types to leave out"
                )
                raise UnsupportedTiffError(
                    f"{name}: IFD {index} {what}, and the size of the file is unknown, so "
                    f"it cannot be rewritten; {_FIX}"
                )
            start = end + (end % 2)  # IFDs begin on a word boundary
        added = []
        for t in missing:
            v = _default(t, value)
            value[t] = v
            added.append(_Entry(t, 3, 1, struct.pack(fmt.order + "H", v).ljust(fmt.inline, b"\0")))
            supplied.append((index, _NAMES[t], v))
        here = start + len(virtual)
        pointer = struct.pack(fmt.order + fmt.word, here)
        if pointer_at >= start:
            virtual[pointer_at - start : pointer_at - start + len(pointer)] = pointer
        else:
            patches[pointer_at] = pointer
        ifd = _rewritten(fmt, entries + added, offset)
        pointer_at = here + len(ifd) - fmt.inline
        virtual += ifd
        if not fmt.big and here + len(ifd) > 2**32:
            raise UnsupportedTiffError(
                f"{name}: IFD {index} must be rewritten (a tag supplied or left out), which "
                f"cannot be done past 4 GiB in a classic TIFF; {_FIX}"
            )
    return Chain(values, patches, start or 0, bytes(virtual), supplied, skipped)
