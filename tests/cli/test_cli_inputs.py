"""``xarray-rasteret build`` with every STAC item file form, remote items, and --datetime-from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import xarray_rasteret as xrr
from servers import RangeHTTPServer
from xarray_rasteret.cli import main

GROUP = r"(?P<id>.+)_(?P<band>B\d\d)\.tif$"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main([*argv, "--no-progress"] if argv[0] == "build" else list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _ids(path: Path) -> list[str]:
    return sorted(xrr.load(path).table.column("id").to_pylist())


@pytest.fixture
def want(sample_folder: Path) -> list[str]:
    return _ids(sample_folder / "s2.parquet")


def test_build_a_json_list_ndjson_and_item_files(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path, want: list[str]
) -> None:
    features = json.loads((sample_folder / "items.json").read_text())["features"]
    folder = tmp_path / "s"
    shutil.copytree(sample_folder, folder)
    (folder / "list.json").write_text(json.dumps(features))
    (folder / "items.ndjson").write_text("\n".join(json.dumps(f) for f in features))
    singles = []
    for f in features:
        singles.append(folder / f"{f['id']}.json")
        singles[-1].write_text(json.dumps(f))
    for sources in (["list.json"], ["items.ndjson"], [p.name for p in singles]):
        out = tmp_path / "out.parquet"
        code, _, err = run(capsys, "build", *[str(folder / s) for s in sources], "-o", str(out),
                           "--bands", "B04,B08")
        assert code == 0, (sources, err)
        assert _ids(out) == want
        out.unlink()


def test_build_remote_items_and_base_href(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path,
    http_server: RangeHTTPServer, want: list[str],
) -> None:
    shutil.copytree(sample_folder, http_server.root, dirs_exist_ok=True)
    code, _, err = run(capsys, "build", http_server.url("items.json"), "-o",
                       str(tmp_path / "r.parquet"), "--bands", "B04")
    assert code == 0, err
    assert _ids(tmp_path / "r.parquet") == want
    assert xrr.load(tmp_path / "r.parquet").sources("B04")[0].href.startswith(http_server.url())
    # Items somewhere else, COGs on the server: --base-href says where.
    features = json.loads((sample_folder / "items.json").read_text())["features"]
    (tmp_path / "away.json").write_text(json.dumps(features))
    code, _, err = run(capsys, "build", str(tmp_path / "away.json"), "-o",
                       str(tmp_path / "b.parquet"), "--base-href", http_server.url())
    assert code == 0, err
    assert xrr.load(tmp_path / "b.parquet").sources("B08")[0].href.startswith(http_server.url())


def test_build_datetime_from(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "d.parquet"
    code, _, err = run(capsys, "build", str(sample_folder / "*.tif"), "-o", str(out),
                       "--group-by", GROUP, "--datetime-from", r"_(?P<date>\d{8})_")
    assert code == 0, err
    got = xrr.load(out).datetimes.astype("datetime64[D]")
    want = xrr.load(sample_folder / "s2.parquet").datetimes.astype("datetime64[D]")
    np.testing.assert_array_equal(np.sort(got), np.sort(want))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{d}/*.tif", "--datetime-from", "%Y%m%dT%H"], "does not match datetime_from='%Y%m%dT%H'"),
        (["{d}/*.tif", "--datetime-from", "(?P<when>x)"], "has no (?P<date>...) or"),
        (["{d}/items.json", "--datetime-from", "%Y%m%d"], "--datetime-from applies to COG files"),
        (["{d}/*.tif", "--base-href", "{d}"], "--base-href applies to STAC item files only"),
        (["{t}/list.json"], "list.json'; pass base_href= to resolve it elsewhere"),
    ],
)
def test_input_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str,
) -> None:
    features = json.loads((sample_folder / "items.json").read_text())["features"]
    # Moved away from its COGs: the relative hrefs resolve against the file, and miss.
    (tmp_path / "list.json").write_text(json.dumps(features))
    monkeypatch.chdir(tmp_path)
    args = [a.format(d=sample_folder, t=tmp_path) for a in argv]
    code, out, err = run(capsys, "build", *args, "-o", str(tmp_path / "x.parquet"))
    assert (code, out) == (1, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xarray-rasteret: error: "), err
    assert message in lines[0]
