"""A failed read's error reaches a dask client: it pickles with its traceback (tblib)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import tblib.pickling_support  # a dependency of dask.distributed, which uses it
import xarray as xr

import xarray_rasteret as xrr
from xarray_rasteret.cli import sample_items_path
from xarray_rasteret.errors import PermissionDeniedError


def test_a_refused_read_pickles_with_its_traceback(http_server) -> None:
    sample = sample_items_path().parent / "S2X_33TWN_20240503_L2A_B04.tif"
    shutil.copy(sample, Path(http_server.root) / "a.tif")
    col = xrr.build([http_server.url("a.tif")])
    http_server.set_faults(forbidden={"a.tif"})
    with pytest.raises(PermissionDeniedError) as info:
        xr.open_dataset(col, engine="rasteret").band_1.values
    error = info.value
    # Not raised inside the handler of the task group that holds it (a cycle).
    assert error.__context__ is None
    # As dask.distributed ships errors: with the traceback and the chain.
    tblib.pickling_support.install(error)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is PermissionDeniedError and str(again) == str(error)
    assert again.__traceback__ is not None
