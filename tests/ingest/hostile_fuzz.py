"""Mutate valid TIFFs into hostile ones and build each in a guarded subprocess.

Test tooling for the hostile-header tests (and runnable as a script to print the
outcome table: ``PYTHONPATH=tests python tests/ingest/hostile_fuzz.py [N]``). The TIFF structure
is located by a small parser of its own rather than ``ingest._ifd``, so a bug
in the code under test cannot hide the mutation it should catch.

Each case is built with ``xarray_rasteret.build([path])`` in a guarded child
(:mod:`guarded`: a memory limit, a deadline, deaths survived).
"""

from __future__ import annotations

import random
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from guarded import OUTCOMES, Case, Result, child_program, run_cases, table

__all__ = [
    "OUTCOMES",
    "Case",
    "Result",
    "chain_ifds",
    "child_program",
    "TiffMap",
    "generate_cases",
    "make_bases",
    "run_cases",
    "table",
]

TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
TYPE_SIZES.update({16: 8, 17: 8, 18: 8})

TILE_OFFSETS, TILE_BYTE_COUNTS, STRIP_OFFSETS, GEO_KEYS = 324, 325, 273, 34735
SAMPLES_PER_PIXEL, PHOTOMETRIC = 277, 262


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class Entry:
    """One IFD entry: where it is and what it says."""

    pos: int
    tag: int
    type: int
    count: int


@dataclass(frozen=True)
class Ifd:
    """One IFD: its offset, entries and the position of its next-IFD pointer."""

    offset: int
    entries: tuple[Entry, ...]
    next_pos: int


@dataclass(frozen=True)
class TiffMap:
    """Where the structures of a valid TIFF lie, for writing mutations."""

    endian: str
    big: bool
    ifds: tuple[Ifd, ...]

    @classmethod
    def parse(cls, data: bytes) -> TiffMap:
        """Locate the IFDs and entries of a valid (unmutated) TIFF."""
        endian = "<" if data[:2] == b"II" else ">"
        big = struct.unpack(endian + "H", data[2:4])[0] == 43
        off = struct.unpack(
            endian + ("Q" if big else "I"), data[(8 if big else 4) :][: 8 if big else 4]
        )[0]
        ifds = []
        while off:
            n_fmt, e_size, head = ("Q", 20, 8) if big else ("H", 12, 2)
            n = struct.unpack(endian + n_fmt, data[off : off + head])[0]
            entries = []
            for k in range(n):
                pos = off + head + k * e_size
                tag, typ = struct.unpack(endian + "HH", data[pos : pos + 4])
                count = struct.unpack(
                    endian + ("Q" if big else "I"), data[pos + 4 : pos + (12 if big else 8)]
                )[0]
                entries.append(Entry(pos, tag, typ, count))
            next_pos = off + head + n * e_size
            ifds.append(Ifd(off, tuple(entries), next_pos))
            off = struct.unpack(
                endian + ("Q" if big else "I"), data[next_pos : next_pos + (8 if big else 4)]
            )[0]
        return cls(endian, big, tuple(ifds))

    @property
    def word(self) -> str:
        """struct code of an offset or count field."""
        return "Q" if self.big else "I"

    def entry(self, tag: int, ifd: int = 0) -> Entry | None:
        """The entry of ``tag`` in IFD ``ifd``, or None."""
        return next((e for e in self.ifds[ifd].entries if e.tag == tag), None)

    def put(self, data: bytearray, pos: int, fmt: str, value: int) -> None:
        """Write ``value`` at ``pos`` in the file's byte order."""
        struct.pack_into(self.endian + fmt, data, pos, value)

    def set_count(self, data: bytearray, entry: Entry, count: int) -> None:
        """Overwrite the count field of ``entry``."""
        self.put(data, entry.pos + 4, self.word, count)

    def value_pos(self, entry: Entry) -> int:
        """Position of the entry's value (or value-offset) field."""
        return entry.pos + (12 if self.big else 8)


# --------------------------------------------------------------------------- cases


Mutation = Callable[[bytes, TiffMap, random.Random], Iterator[tuple[str, str, bytes]]]


def _huge_counts(data: bytes, m: TiffMap, rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    for tag in (TILE_OFFSETS, TILE_BYTE_COUNTS, GEO_KEYS, STRIP_OFFSETS):
        e = m.entry(tag)
        if e is not None:
            out = bytearray(data)
            m.set_count(out, e, 2**31)
            yield "huge_count", f"tag {tag} count 2^31", bytes(out)


def _loops(data: bytes, m: TiffMap, rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    out = bytearray(data)
    m.put(out, m.ifds[0].next_pos, m.word, m.ifds[0].offset)
    yield "loop", "IFD0 -> IFD0", bytes(out)
    if len(m.ifds) > 1:
        out = bytearray(data)
        m.put(out, m.ifds[-1].next_pos, m.word, m.ifds[0].offset)
        yield "loop", f"IFD{len(m.ifds) - 1} -> IFD0", bytes(out)


def chain_ifds(data: bytes, m: TiffMap, n: int) -> bytes:
    """``data`` with ``n`` copies of its last IFD appended and chained after it.

    The copies keep its value offsets, so each is a valid IFD of the same image.
    """
    last, word = m.ifds[-1], (8 if m.big else 4)
    block = bytearray(data[last.offset : last.next_pos + word])
    size = len(block)
    out = bytearray(data)
    start = len(out) + (len(out) & 1)  # IFDs start on a word boundary
    out.extend(b"\0" * (start - len(out)))
    m.put(out, last.next_pos, m.word, start)
    for k in range(n):
        m.put(block, size - word, m.word, 0 if k == n - 1 else start + (k + 1) * size)
        out.extend(block)
    return bytes(out)


def _many_ifds(data: bytes, m: TiffMap, rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    yield "many_ifds", "20000 IFDs", chain_ifds(data, m, 20000)


def _spp(data: bytes, m: TiffMap, rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    e = m.entry(SAMPLES_PER_PIXEL)
    if e is not None:
        out = bytearray(data)
        m.put(out, m.value_pos(e), "H", 65535)
        yield "spp", "SamplesPerPixel 65535", bytes(out)


def _remove(data: bytes, m: TiffMap, tag: int) -> bytes | None:
    """``data`` with the entry of ``tag`` removed from IFD0 (later entries shift up)."""
    ifd, e = m.ifds[0], m.entry(tag)
    if e is None:
        return None
    e_size = 20 if m.big else 12
    out = bytearray(data)
    tail = data[e.pos + e_size : ifd.next_pos + (8 if m.big else 4)]
    out[e.pos : e.pos + len(tail)] = tail
    m.put(out, ifd.offset, "Q" if m.big else "H", len(ifd.entries) - 1)
    return bytes(out)


def _missing(data: bytes, m: TiffMap, rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    for tag, name in ((SAMPLES_PER_PIXEL, "SamplesPerPixel"), (PHOTOMETRIC, "Photometric")):
        out = _remove(data, m, tag)
        if out is not None:
            yield "missing_tag", f"no {name}", out


def _unknown_types(data: bytes, m: TiffMap, rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    entries = m.ifds[0].entries
    for typ in (0, 14, 19, 255):
        e = rng.choice(entries)
        out = bytearray(data)
        m.put(out, e.pos + 2, "H", typ)
        yield "unknown_type", f"tag {e.tag} type {typ}", bytes(out)


def _truncations(data: bytes, m: TiffMap, rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    first_end = m.ifds[0].next_pos
    for cut in (0, 3, 7, 15, first_end // 2, first_end + 2, len(data) // 2, len(data) - 1):
        yield "truncated", f"cut at {cut}", data[:cut]


def _flips(
    data: bytes, m: TiffMap, rng: random.Random, n: int = 14
) -> Iterator[tuple[str, str, bytes]]:
    for _ in range(n):
        pos, byte = rng.randrange(min(512, len(data))), rng.randrange(256)
        out = bytearray(data)
        out[pos] = byte
        yield "flip", f"byte {pos} = {byte:#04x}", bytes(out)


def _random_counts(
    data: bytes, m: TiffMap, rng: random.Random, n: int = 6
) -> Iterator[tuple[str, str, bytes]]:
    entries = [e for ifd in m.ifds for e in ifd.entries]
    for _ in range(n):
        e = rng.choice(entries)
        count = rng.choice([0, 1, e.count + 1, 2**16 + 1, 2**28, 2**32 - 1])
        out = bytearray(data)
        m.set_count(out, e, count)
        yield "count", f"tag {e.tag} count {count}", bytes(out)


def _random_offsets(
    data: bytes, m: TiffMap, rng: random.Random, n: int = 4
) -> Iterator[tuple[str, str, bytes]]:
    entries = [
        e for e in m.ifds[0].entries if e.count * TYPE_SIZES.get(e.type, 1) > (8 if m.big else 4)
    ]
    for _ in range(n):
        e = rng.choice(entries)
        value = rng.choice([0, len(data) - 2, len(data) + 10, 2**31 + 7])
        out = bytearray(data)
        m.put(out, m.value_pos(e), m.word, value)
        yield "offset", f"tag {e.tag} offset {value}", bytes(out)


MUTATIONS: tuple[Mutation, ...] = (
    _huge_counts,
    _loops,
    _many_ifds,
    _spp,
    _missing,
    _unknown_types,
    _truncations,
    _flips,
    _random_counts,
    _random_offsets,
)


def make_bases(directory: Path) -> dict[str, bytes]:
    """Write the valid files every mutation starts from; return their bytes by name."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cogs import write_tiff

    specs = {
        "tiled": {"dtype": "uint16", "compress": "DEFLATE", "overviews": (2, 4)},
        "striped": {"dtype": "uint8", "tiled": False, "blockysize": 16},
        "bigtiff": {"dtype": "int16", "compress": "DEFLATE", "bigtiff": True, "endianness": "BIG"},
        "planar": {"dtype": "uint16", "count": 3, "interleave": "band", "compress": "DEFLATE"},
    }
    out = {}
    for name, spec in specs.items():
        path = directory / f"{name}.tif"
        write_tiff(path, **spec)  # type: ignore[arg-type]
        out[name] = path.read_bytes()
    return out


def generate_cases(bases: dict[str, bytes], seed: int = 0) -> list[Case]:
    """Every mutation of every base file, deterministic for ``seed``."""
    rng = random.Random(seed)
    cases = []
    for name, data in bases.items():
        m = TiffMap.parse(data)
        for mutate in MUTATIONS:
            for kind, label, out in mutate(data, m, rng):
                cases.append(Case(kind, f"{name}: {label}", out))
    return cases


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        all_cases = generate_cases(make_bases(Path(tmp)))
        res = run_cases(all_cases, Path(tmp), workers=int(sys.argv[1]) if len(sys.argv) > 1 else 3)
        print(table(res))
        for r in res:
            if r.outcome not in ("ok", "clear"):
                print(f"{r.outcome:8} {r.case.label}: {r.detail[:300]!r}")
