"""Sources as users write them: folders, globs, STAC files given to open_dataset, no folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import xarray as xr

import xarray_rasteret as xrr
from xarray_rasteret.errors import ObjectNotFoundError


@pytest.fixture
def scenes(sample_folder: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "scenes"
    folder.mkdir()
    for tif in sample_folder.glob("*.tif"):
        shutil.copy(tif, folder / tif.name)
    return folder


def test_a_folder_and_a_glob_mean_their_geotiffs(scenes: Path) -> None:
    every = sorted(str(p) for p in scenes.glob("*.tif"))
    from_folder = xrr.build(str(scenes))
    assert sorted(from_folder.hrefs(from_folder.bands[0])) == every
    red = xrr.build(str(scenes / "*_B04.tif"))
    assert sorted(red.hrefs(red.bands[0])) == [p for p in every if p.endswith("_B04.tif")]
    mixed = xrr.build([str(scenes / "*_B08.tif"), every[0]])
    assert len(mixed) == 5  # four B08 files and the first file


def test_folder_and_pattern_slips_are_named(scenes: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ObjectNotFoundError, match=r"folder '.*empty' holds no .tif or .tiff file"):
        xrr.build(str(empty))
    with pytest.raises(ObjectNotFoundError, match=r"no file matches '.*\*_B99.tif'"):
        xrr.build(str(scenes / "*_B99.tif"))


def test_stac_items_given_to_open_dataset_say_to_build_first(sample_folder: Path) -> None:
    with pytest.raises(ValueError, match=r"looks like STAC items, not a collection: build one"):
        xr.open_dataset(sample_folder / "items.json", engine="rasteret")


def test_to_parquet_into_a_missing_folder_names_it(sample_folder: Path, tmp_path: Path) -> None:
    coll = xrr.load(sample_folder / "s2.parquet")
    target = tmp_path / "nope" / "s2.parquet"
    with pytest.raises(ObjectNotFoundError, match=r"the folder '.*nope' does not exist; create"):
        coll.to_parquet(target)
