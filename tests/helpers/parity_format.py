"""One plain form for the helpers' results, shared by rasteret 0.4 and this package.

``tools/parity/make_goldens.py`` runs rasteret 0.4.1 (Python 3.12) and stores each
result in this form; ``test_rasteret_parity.py`` puts ours in the same form and
compares. Only NumPy, pyarrow and shapely are used, so both interpreters agree.

A result becomes ``{name: numpy array}`` (``.npz``) plus ``{name: description}``
(JSON): arrays keep their dtype; a table becomes one entry per column (geometry
as WKB hex, a cell that is an array as one entry per row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["flatten", "read_result", "write_result"]


def _column(name: str, values: list[Any], arrays: dict[str, np.ndarray], meta: dict) -> None:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, np.ndarray):
        for i, v in enumerate(values):
            arrays[f"{name}[{i}]"] = np.asarray(v)
        meta[name] = {"kind": "arrays", "rows": len(values)}
    elif sample is not None and hasattr(sample, "wkb_hex"):
        arrays[name] = np.array([None if v is None else v.wkb_hex for v in values], object)
        meta[name] = {"kind": "wkb"}
    elif sample is not None and type(sample).__name__ == "Affine":
        arrays[name] = np.array([tuple(v)[:6] for v in values], np.float64)
        meta[name] = {"kind": "affine"}
    else:
        arr = np.asarray(values)
        if arr.dtype.kind == "M":
            arr = arr.astype("datetime64[us]").astype(np.int64)
            meta[name] = {"kind": "datetime_us"}
        else:
            meta[name] = {"kind": "values", "dtype": str(arr.dtype)}
        arrays[name] = arr


def flatten(result: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, meta)`` of a numpy array, xarray Dataset, GeoDataFrame or pyarrow Table."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    kind = type(result).__name__
    if isinstance(result, np.ndarray):
        arrays["values"] = result
        meta["values"] = {"kind": "ndarray", "dtype": str(result.dtype)}
    elif kind == "Dataset":
        for name, var in result.variables.items():
            key = f"var:{name}"
            values = np.asarray(var.values)
            if values.dtype.kind == "M":
                values = values.astype("datetime64[us]").astype(np.int64)
            arrays[key] = values
            meta[key] = {"dims": list(var.dims), "dtype": str(var.dtype)}
        meta["dims"] = dict(result.sizes)
    elif kind == "Table":  # pyarrow
        for name in result.column_names:
            col = result.column(name)
            if str(col.type).startswith("timestamp"):
                values = col.cast("int64").to_pylist()
                arrays[name] = np.array(values, np.int64)
                meta[name] = {"kind": "datetime_us", "type": str(col.type)}
            else:
                arrays[name] = np.array(col.to_pylist())
                meta[name] = {"kind": "values", "type": str(col.type)}
    elif kind == "GeoDataFrame" or kind == "DataFrame":
        for name in result.columns:
            _column(str(name), list(result[name]), arrays, meta)
            meta[str(name)]["dtype_pandas"] = str(result[name].dtype)
    else:
        raise TypeError(f"no plain form for a {kind}")
    meta["__type__"] = kind
    return arrays, meta


def write_result(folder: Path, case: str, result: Any) -> None:
    """Store ``result`` (or the exception it raised) as ``case.npz`` and ``case.json``."""
    if isinstance(result, BaseException):
        meta = {"__type__": "error", "error": type(result).__name__, "message": str(result)}
        (folder / f"{case}.json").write_text(json.dumps(meta, indent=1))
        return
    arrays, meta = flatten(result)
    np.savez_compressed(folder / f"{case}.npz", **arrays)
    (folder / f"{case}.json").write_text(json.dumps(meta, indent=1, default=str))


def read_result(folder: Path, case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """What :func:`write_result` stored: ``(arrays, meta)`` (no arrays for an error)."""
    meta = json.loads((folder / f"{case}.json").read_text())
    if meta["__type__"] == "error":
        return {}, meta
    with np.load(folder / f"{case}.npz", allow_pickle=True) as data:
        return {k: data[k] for k in data.files}, meta
