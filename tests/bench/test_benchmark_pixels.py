"""The benchmark's pixel check: known approximations allowed, nothing else."""

from __future__ import annotations

import numpy as np
from benchmarks.report import KNOWN_DIFFERENCES, Row, Section
from benchmarks.run import _check_pixels


def _section(tools: list[str]) -> Section:
    sec = Section("S3", "S3", "cross-CRS", None)
    for tool in tools:
        sec.rows[tool] = Row(tool)
    return sec


def _moved(ref: np.ndarray, share: float, seed: int) -> np.ndarray:
    out = ref.copy().ravel()
    picks = np.random.default_rng(seed).choice(out.size, int(share * out.size), replace=False)
    out[picks] += 1
    return out.reshape(ref.shape)


def test_known_differences_from_the_exact_reference_are_allowed_and_others_are_not():
    exact = np.arange(100_000, dtype=np.uint16).reshape(100, 1000)
    helpers_share = KNOWN_DIFFERENCES[("S3", "rasteret-helpers")][0]
    arrays = {
        "rasterio": exact,
        "rasteret-helpers": _moved(exact, helpers_share / 2, 1),
        "rasterio-pool": _moved(exact, 0.0001, 2),  # no known difference: flagged
    }
    sec = _section(list(arrays))
    _check_pixels("S3", sec, arrays)
    assert sec.reference == "rasterio"
    assert sec.rows["rasteret-helpers"].known
    assert sec.rows["rasterio-pool"].mismatches == 10
    assert sec.rows["rasterio-pool"].known is None


def test_without_the_exact_reference_two_approximations_may_differ_by_both_shares():
    exact = np.arange(100_000, dtype=np.uint16).reshape(100, 1000)
    engine_share = KNOWN_DIFFERENCES[("S3", "rasteret")][0]
    helpers_share = KNOWN_DIFFERENCES[("S3", "rasteret-helpers")][0]
    arrays = {  # run with --tool rasteret --tool rasteret-helpers: no rasterio
        "rasteret": exact,
        "rasteret-helpers": _moved(exact, engine_share + helpers_share / 2, 3),
    }
    sec = _section(list(arrays))
    _check_pixels("S3", sec, arrays)
    assert sec.reference == "rasteret"
    row = sec.rows["rasteret-helpers"]
    assert row.mismatches > engine_share * row.compared
    assert row.known is not None and "open_dataset(crs=...)" in row.known

    arrays["rasteret-helpers"] = _moved(exact, 2 * (engine_share + helpers_share), 4)
    sec = _section(list(arrays))
    _check_pixels("S3", sec, arrays)
    assert sec.rows["rasteret-helpers"].known is None  # beyond both: a real difference
