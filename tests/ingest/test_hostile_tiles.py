"""Damaged tile bodies of every codec: a clear error or GDAL's pixels, in guarded children."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_fuzz import run_cases, table
from tile_fuzz import READ_CHILD, make_tile_cases


@pytest.mark.slow
def test_damaged_tiles_read_as_gdal_or_fail_clearly(tmp_path: Path) -> None:
    cases = make_tile_cases(tmp_path, per_codec=12, seed=5)
    assert len(cases) == 96
    results = run_cases(cases, tmp_path, timeout=20.0, mem=2 << 30, workers=3, child=READ_CHILD)
    print("\n" + table(results))
    bad = [r for r in results if r.outcome not in ("ok", "clear")]
    report = table(results) + "".join(
        f"\n{r.outcome} {r.case.label}: {r.detail[:200]}" for r in bad
    )
    assert not bad, report
