"""The benchmark's target check: a missed time target says what time it needed."""

from __future__ import annotations

from benchmarks.floor import Floor
from benchmarks.report import Row, Section, check_targets


def _section(ours: float, pool: float, bare: float) -> Section:
    # Floor 0.040 + 0.010 + 0.100 / 2 = 0.100 s.
    floor = Floor(tiles=4, bytes=4_000_000, latency=0.040, transfer=0.010, decode=0.100, cores=2)
    sec = Section("S4", "S4", "full band", floor)
    sec.rows["rasteret"] = Row("rasteret", seconds=[ours, ours, ours])
    sec.rows["rasterio-pool"] = Row("rasterio-pool", seconds=[pool])
    sec.bare = Row("bare pipeline", seconds=[bare])
    return sec


def test_met_time_targets_carry_no_explanation():
    targets = dict(check_targets(_section(ours=0.140, pool=0.500, bare=0.120)))
    assert targets == {"within 1.5x of floor": True, ">= 3.0x faster than rasterio-pool": True}


def test_a_missed_target_under_the_floor_says_so():
    # 3x of 0.270 s is 0.090 s, under the floor of 0.100 s: no client can meet it here.
    targets = check_targets(_section(ours=0.140, pool=0.270, bare=0.120))
    assert targets[1] == (
        ">= 3.0x faster than rasterio-pool (needs <= 0.090 s: under the floor, 0.100 s)",
        False,
    )


def test_a_missed_target_under_the_bare_pipeline_names_it():
    # 3x of 0.330 s is 0.110 s: above the floor, under the bare pipeline's 0.120 s.
    targets = check_targets(_section(ours=0.160, pool=0.330, bare=0.120))
    assert targets[0] == ("within 1.5x of floor (needs <= 0.150 s)", False)
    assert targets[1] == (
        ">= 3.0x faster than rasterio-pool (needs <= 0.110 s: under the bare pipeline, 0.120 s)",
        False,
    )
