"""Time periods as mosaic groups: ``groupby="P1M"`` and the other ISO 8601 durations.

A period groups the records whose (UTC) datetime falls in it; its key, and the
output's ``time`` coordinate, is the period's start. Periods of one unit are
counted from a fixed epoch, so the same ``groupby`` cuts every collection the
same way:

==========  =============================================================
``PnD``     ``n`` days from 1970-01-01 (``P16D``: Landsat-like 16-day bins)
``PnW``     ``n`` weeks from Monday 1969-12-29 (``P1W`` are ISO weeks)
``PnM``     ``n`` calendar months from 1970-01 (``P3M``: quarters)
``PnY``     ``n`` calendar years from 1970
==========  =============================================================

Mixed durations (``P1M15D``) and times of day (``PT12H``) have no fixed length or
no use here and are refused; a column of the collection groups by anything else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["is_period", "period_starts"]

_PERIOD = re.compile(r"^P([1-9]\d*)([DWMY])$")
_LOOKS_LIKE = re.compile(r"^P[\d.T-]")
_DAY_EPOCH = np.datetime64("1970-01-01", "D")
_WEEK_EPOCH = np.datetime64("1969-12-29", "D")  # a Monday: weeks are ISO weeks


def is_period(groupby: object) -> bool:
    """True if ``groupby`` is spelled as an ISO 8601 duration (valid or not)."""
    return isinstance(groupby, str) and _LOOKS_LIKE.match(groupby) is not None


def _parse(spec: str) -> tuple[int, str]:
    match = _PERIOD.match(spec)
    if match is None:
        raise ValueError(
            f"groupby={spec!r} is not a period this engine groups by: give one unit, "
            "a whole number of days, weeks, months or years (P1D, P16D, P1W, P1M, P3M, "
            "P1Y); for other groupings, a column of the collection"
        )
    return int(match.group(1)), match.group(2)


def period_starts(
    times: np.ndarray, spec: str, ids: Sequence[object] | None = None
) -> np.ndarray:
    """The start of the period of ``spec`` holding each time.

    Parameters
    ----------
    times
        The records' datetimes (``datetime64``, UTC).
    spec
        An ISO 8601 duration of one unit: ``PnD``, ``PnW``, ``PnM`` or ``PnY``.
    ids
        The records' ids, to name those without a time in the error.

    Returns
    -------
    numpy.ndarray
        ``datetime64[ns]``, one per time.

    Raises
    ------
    ValueError
        For another spelling, or a record without a datetime.

    Examples
    --------
    >>> t = np.array(["2024-05-03T10:00", "2024-05-31T23:59"], dtype="datetime64[ns]")
    >>> period_starts(t, "P1M")
    array(['2024-05-01T00:00:00.000000000', '2024-05-01T00:00:00.000000000'],
          dtype='datetime64[ns]')
    >>> period_starts(t[:1], "P1W")  # the Monday of its ISO week
    array(['2024-04-29T00:00:00.000000000'], dtype='datetime64[ns]')
    """
    n, unit = _parse(spec)
    times = np.asarray(times, dtype="datetime64[ns]")
    missing = np.isnat(times)
    if missing.any():
        names = [ids[i] for i in np.flatnonzero(missing)[:3]] if ids is not None else []
        raise ValueError(
            f"groupby={spec!r} places records by their datetime; {int(missing.sum())} "
            f"record(s) have none{f' (e.g. {names})' if names else ''}: select records "
            "with a time (time=...) or build with datetime_from="
        )
    if unit in "MY":
        coarse = times.astype(f"datetime64[{unit}]")
        count = coarse.astype(np.int64)  # units since 1970
        return ((count // n) * n).astype(f"datetime64[{unit}]").astype("datetime64[ns]")
    epoch, days = (_DAY_EPOCH, n) if unit == "D" else (_WEEK_EPOCH, 7 * n)
    offset = (times.astype("datetime64[D]") - epoch).astype(np.int64)
    return (epoch + (offset // days) * days).astype("datetime64[ns]")
