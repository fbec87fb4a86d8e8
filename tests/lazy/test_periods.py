"""``groupby=`` an ISO 8601 period (``P1M``, ``P16D``, ...): one mosaic per period."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import rasterio.merge
import xarray as xr
from test_mosaic import same_grid  # noqa: F401  (a module-scoped fixture)
from test_target_grid import collection

import xarray_rasteret as xrr
from xarray_rasteret._lazy.periods import is_period, period_starts

T = np.array(
    ["1969-12-31T23:00", "2024-01-01T00:00", "2024-02-29T12:00", "2024-03-31T23:59:59",
     "2024-04-01T00:00", "2024-12-31T10:00"],
    dtype="datetime64[ns]",
)  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("P1D", ["1969-12-31", "2024-01-01", "2024-02-29", "2024-03-31", "2024-04-01",
                 "2024-12-31"]),
        ("P1M", ["1969-12", "2024-01", "2024-02", "2024-03", "2024-04", "2024-12"]),
        ("P3M", ["1969-10", "2024-01", "2024-01", "2024-01", "2024-04", "2024-10"]),
        ("P1Y", ["1969", "2024", "2024", "2024", "2024", "2024"]),
        ("P2Y", ["1968", "2024", "2024", "2024", "2024", "2024"]),
    ],
)  # fmt: skip
def test_period_starts_on_the_calendar(spec: str, expected: list[str]) -> None:
    got = period_starts(T, spec)
    assert got.dtype == np.dtype("datetime64[ns]")
    assert got.tolist() == np.array(expected, dtype="datetime64[ns]").tolist()


def test_days_and_weeks_count_from_their_epoch() -> None:
    days = (T.astype("datetime64[D]") - np.datetime64("1970-01-01")).astype(int)
    starts = period_starts(T, "P16D")
    offsets = (starts.astype("datetime64[D]") - np.datetime64("1970-01-01")).astype(int)
    assert (offsets % 16 == 0).all() and ((days - offsets) >= 0).all()
    assert ((days - offsets) < 16).all()
    weeks = period_starts(T, "P1W").astype("datetime64[D]")
    # Mondays, and the Monday of each time's ISO week.
    assert all(w.item().isoweekday() == 1 for w in weeks)
    for t, w in zip(T.astype("datetime64[D]"), weeks, strict=True):
        assert t.item().isocalendar()[:2] == w.item().isocalendar()[:2]


@pytest.mark.parametrize("spec", ["P1M15D", "PT12H", "P0D", "P1.5M", "P-1D", "P1Q"])
def test_other_durations_are_refused_with_the_ones_there_are(spec: str) -> None:
    assert is_period(spec) or spec == "P1Q"
    with pytest.raises(ValueError, match=r"one unit, a whole number of days, weeks, months or"):
        period_starts(T, spec)


def test_records_without_a_time_are_named() -> None:
    t = np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]")
    with pytest.raises(ValueError, match=r"1 record\(s\) have none \(e.g. \['b'\]\): select"):
        period_starts(t, "P1M", ["a", "b"])


def test_groupby_a_month_mosaics_each_months_records(same_grid) -> None:  # noqa: F811
    times = {"a": "2024-05-03T09:40", "b": "2024-05-28T09:40", "c": "2024-06-02T09:40"}
    col = collection([same_grid[k] for k in "abc"], [times[k] for k in "abc"])
    ds = xr.open_dataset(col, engine="rasteret", groupby="P1M")
    assert ds.time.values.tolist() == np.array(
        ["2024-05-01", "2024-06-01"], dtype="datetime64[ns]"
    ).tolist()
    assert list(ds.id.values) == ["a", "c"]  # the first member's
    with rasterio.open(same_grid["a"]) as a, rasterio.open(same_grid["b"]) as b:
        exp, _ = rasterio.merge.merge([a, b], bounds=ds.rio.bounds(), method="first")
    np.testing.assert_array_equal(ds.band_1.values[0], exp[0])
    # The same as grouping by a column holding the months.
    months = pa.array([times[i][:7] for i in col.ids])
    by_column = xr.open_dataset(
        xrr.Collection(col.table.append_column("month", months)), engine="rasteret",
        groupby="month",
    )
    np.testing.assert_array_equal(ds.band_1.values, by_column.band_1.values)
    # Lazy: one month's key reads that month's records only.
    fresh = xr.open_dataset(col, engine="rasteret", groupby="P1M")
    with xrr.track() as june:
        fresh.band_1.isel(time=1).values
    alone = xr.open_dataset(collection([same_grid["c"]], [times["c"]]), engine="rasteret")
    with xrr.track() as only_c:
        alone.band_1.values
    assert june.requests == only_c.requests and june.bytes == only_c.bytes
