"""``build(paths, datetime_from=...)``: record times from file names, and its messages."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import xarray_rasteret as xrr

DATES = ["2024-05-03", "2024-05-08", "2024-05-13", "2024-05-18"]


def _group(href: str) -> tuple[str, str]:
    rid, band = os.path.basename(href)[:-4].rsplit("_", 1)
    return rid, band


@pytest.fixture
def tifs(sample_folder: Path) -> list[Path]:
    return sorted(sample_folder.glob("*.tif"))


def _days(coll: xrr.Collection) -> list[str]:
    return [str(t)[:10] for t in coll.datetimes]


@pytest.mark.parametrize(
    "spec", [r"_(?P<date>\d{8})_", re.compile(r"_(?P<date>\d{4}-?\d{2}-?\d{2})_"), "%Y%m%d"]
)
def test_dates_from_names_with_group_by(tifs: list[Path], spec: str | re.Pattern[str]) -> None:
    coll = xrr.build(tifs, group_by=_group, datetime_from=spec)
    assert len(coll) == 4 and sorted(coll.bands) == ["B04", "B08"]
    assert _days(coll) == DATES
    assert all(str(t)[11:19] == "00:00:00" for t in coll.datetimes)


def test_datetime_group_and_time_format(tifs: list[Path], tmp_path: Path) -> None:
    names = []
    for i, day in enumerate(("20240503", "20240508")):
        name = tmp_path / f"scene_{day}T10155{i}_B04.tif"
        shutil.copy(tifs[2 * i], name)
        names.append(name)
    coll = xrr.build(names, datetime_from=r"_(?P<datetime>\d{8}T\d{6})_")
    want = np.array(["2024-05-03T10:15:50", "2024-05-08T10:15:51"], dtype="datetime64[s]")
    np.testing.assert_array_equal(coll.datetimes.astype("datetime64[s]"), want)
    again = xrr.build(names, datetime_from="%Y%m%dT%H%M%S")
    np.testing.assert_array_equal(again.datetimes.astype("datetime64[s]"), want)


def test_without_datetime_from_path_records_have_no_name_time(tifs: list[Path]) -> None:
    coll = xrr.build(tifs[:1])
    # The sample's files carry no DateTime tag: the time is unknown, not guessed.
    assert np.isnat(coll.datetimes).all()
    assert _days(xrr.build(tifs[:1], datetime_from="%Y%m%d")) == DATES[:1]


def test_a_name_that_does_not_match_names_the_file_and_the_pattern(
    tifs: list[Path], tmp_path: Path
) -> None:
    odd = tmp_path / "no_date_here.tif"
    shutil.copy(tifs[0], odd)
    with pytest.raises(
        ValueError,
        match=r"file 'no_date_here.tif' does not match datetime_from='_\(\?P<date>\\\\d\{8\}\)_'",
    ):
        xrr.build([tifs[0], odd], datetime_from=r"_(?P<date>\d{8})_")
    with pytest.raises(ValueError, match=r"file 'no_date_here.tif' does not match "
                       r"datetime_from='%Y%m%d'"):
        xrr.build([odd], datetime_from="%Y%m%d")


def test_bad_specs_and_values_say_what_to_write(tifs: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"has no \(\?P<date>\.\.\.\) or \(\?P<datetime>"):
        xrr.build(tifs[:1], datetime_from=r"_(?P<day>\d{8})_")
    with pytest.raises(ValueError, match="neither a regex .* nor a strftime format"):
        xrr.build(tifs[:1], datetime_from="date")
    with pytest.raises(ValueError, match="%B is not supported in file names"):
        xrr.build(tifs[:1], datetime_from="%d%B%Y")
    with pytest.raises(ValueError, match="is not a regular expression"):
        xrr.build(tifs[:1], datetime_from=r"(?P<date>\d{8}")
    bad = tmp_path / "S2X_20241340_B04.tif"
    shutil.copy(tifs[0], bad)
    with pytest.raises(ValueError, match=r"file 'S2X_20241340_B04.tif': the \(date\) group .* "
                       r"matched '20241340', which is not a date"):
        xrr.build([bad], datetime_from=r"_(?P<date>\d{8})_")
    with pytest.raises(ValueError, match=r"'20241340' found by datetime_from='%Y%m%d' is not a"):
        xrr.build([bad], datetime_from="%Y%m%d")


def test_files_of_one_record_must_agree(tifs: list[Path], tmp_path: Path) -> None:
    a = tmp_path / "scene_20240503_B04.tif"
    b = tmp_path / "scene_20240504_B08.tif"
    shutil.copy(tifs[0], a)
    shutil.copy(tifs[1], b)
    with pytest.raises(ValueError, match=r"record 'scene': its files' names spell different "
                       r"times .*2024-05-03 00:00:00.*2024-05-04 00:00:00"):
        xrr.build([a, b], group_by=lambda h: ("scene", h[-7:-4]), datetime_from="%Y%m%d")


def test_dates_are_utc(tifs: list[Path]) -> None:
    coll = xrr.build(tifs[:1], datetime_from="%Y%m%d")
    when = coll.datetimes[0].astype("datetime64[s]").item()
    assert when == dt.datetime(2024, 5, 3)
