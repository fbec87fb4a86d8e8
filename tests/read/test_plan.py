import numpy as np
import pytest

from xarray_rasteret._read.plan import coalesce, tiles_for_window
from xarray_rasteret._types import TileLayout, Window


def layout(width=300, height=200, tw=64, th=128, planes=1):
    n = -(-width // tw) * -(-height // th) * planes
    offsets = np.arange(1, n + 1, dtype=np.int64) * 1000
    counts = np.full(n, 500, dtype=np.int64)
    return TileLayout(width, height, tw, th, offsets, counts)


def test_tiles_for_window_touches_only_intersecting_tiles():
    lay = layout()
    tiles = tiles_for_window(lay, Window(100, 130, 60, 70))
    assert [(t.row, t.col) for t in tiles] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert tiles[0].start == 1000 and tiles[0].end == 1500


def test_tiles_for_window_clips_outside_and_misses():
    lay = layout()
    assert tiles_for_window(lay, Window(-50, -1, 0, 10)) == []
    assert tiles_for_window(lay, Window(0, 10, 300, 400)) == []
    tiles = tiles_for_window(lay, Window(-10, 5, 290, 400))
    assert [(t.row, t.col) for t in tiles] == [(0, 4)]


def test_planar_plane_offsets():
    lay = layout(planes=3)
    per_plane = lay.tiles_across * lay.tiles_down
    t0 = tiles_for_window(lay, Window(0, 1, 0, 1), plane=0)[0]
    t2 = tiles_for_window(lay, Window(0, 1, 0, 1), plane=2)[0]
    assert t2.start - t0.start == 2 * per_plane * 1000


def test_sparse_tile_flagged():
    lay = layout()
    lay.tile_offsets[0] = 0
    lay.tile_byte_counts[0] = 0
    assert tiles_for_window(lay, Window(0, 1, 0, 1))[0].sparse


def test_coalesce_merges_by_gap_and_caps_size():
    ranges = [(0, 100), (150, 200), (10_000, 10_100), (10_100, 10_200)]
    merged = coalesce(ranges, max_gap=64)
    assert [(r.start, r.end, r.members) for r in merged] == [
        (0, 200, (0, 1)),
        (10_000, 10_200, (2, 3)),
    ]
    capped = coalesce(ranges, max_gap=100_000, max_size=150)
    assert [(r.start, r.end) for r in capped] == [
        (0, 100), (150, 200), (10_000, 10_100), (10_100, 10_200)
    ]


def test_coalesce_unsorted_and_duplicates_cover_every_member():
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 10_000, 200)
    ranges = [(int(s), int(s) + int(rng.integers(1, 300))) for s in starts] + [(5, 10), (5, 10)]
    merged = coalesce(ranges, max_gap=50, max_size=2000)
    seen = sorted(i for r in merged for i in r.members)
    assert seen == list(range(len(ranges)))
    for r in merged:
        for i in r.members:
            assert r.start <= ranges[i][0] and ranges[i][1] <= r.end
    assert all(a.end <= b.start for a, b in zip(merged[:-1], merged[1:], strict=True))


@pytest.mark.parametrize("n", [0, 1])
def test_coalesce_small(n):
    assert len(coalesce([(0, 10)] * n)) == n
