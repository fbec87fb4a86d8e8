"""The command line, run in-process through ``main([...])`` (and once as ``python -m``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import xarray_rasteret as xrr
from servers import RangeHTTPServer
from xarray_rasteret.cli import main

GROUP = r"(?P<id>.+)_(?P<band>B\d\d)\.tif$"
B04_LINE = "    B04: uint16, 512x512 px at 10 x 10 m, nodata 0, tiles 256x256, 1 overview, deflate"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``xarray-rasteret argv...``."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # --help, --version and usage errors exit through argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("xarray-rasteret: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"xarray-rasteret {xrr.__version__}")


def test_help_is_plain_text_and_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, top, _ = run(capsys, "--help")
    assert code == 0
    assert "``" not in top and ":func:" not in top
    assert all(word in top for word in ("demo", "build", "info", "--version", "--debug"))
    code, build_help, _ = run(capsys, "build", "--help")
    assert code == 0
    for option in ("--bands", "--group-by", "--storage-options", "--output", "glob"):
        assert option in build_help


def test_demo_reads_the_sample_and_removes_its_temp_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert out.count("mean NDVI") == 4
    assert list(tmp_path.iterdir()) == []


def test_demo_out_keeps_the_collection(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, "demo", "--out", str(tmp_path / "kept"))
    assert code == 0
    assert len(xrr.load(tmp_path / "kept" / "sample_collection.parquet")) == 4


def test_build_stac_with_bands_then_info(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "new" / "folder" / "s2.parquet"  # parent folders are created
    code, out, _ = run(capsys, "build", str(sample_folder / "items.json"), "-o", str(out_file),
                       "--bands", "B04", "--no-progress")
    assert code == 0 and f"wrote {out_file}" in out
    assert xrr.load(out_file).bands == ["B04"]
    code, info, _ = run(capsys, "info", str(out_file))
    assert code == 0
    assert "  records: 4" in info
    assert "  extent:  16.271013, 45.099753, 16.337148, 45.146573 (lon/lat, OGC:CRS84)" in info
    assert "  time:    2024-05-03T10:00:12 .. 2024-05-18T10:00:12" in info
    assert "  crs:     EPSG:32633 (4)" in info
    assert B04_LINE in info.splitlines()
    assert "B08" not in info


def test_bands_may_be_comma_separated(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path
) -> None:
    code, _, _ = run(capsys, "build", str(sample_folder / "items.json"), "-o",
                     str(tmp_path / "c.parquet"), "--bands", "B08,B04", "--no-progress")
    assert code == 0
    assert sorted(xrr.load(tmp_path / "c.parquet").bands) == ["B04", "B08"]


@pytest.mark.parametrize(
    ("source", "records", "bands"),
    [("*_B04.tif", 4, ["band_1"]), ("S2X_33TWN_20240503_*.tif", 2, ["band_1"])],
)
def test_build_expands_globs(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path,
    source: str, records: int, bands: list[str],
) -> None:
    code, _, _ = run(capsys, "build", str(sample_folder / source), "-o",
                     str(tmp_path / "g.parquet"), "--no-progress")
    assert code == 0
    built = xrr.load(tmp_path / "g.parquet")
    assert (len(built), built.bands) == (records, bands)


def test_build_folder_with_group_by(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "build", str(sample_folder), "-o", str(tmp_path / "f.parquet"),
                       "--group-by", GROUP, "--no-progress")
    assert code == 0
    built = xrr.load(tmp_path / "f.parquet")
    assert (len(built), built.bands) == (4, ["B04", "B08"])
    assert built.ids[0] == "S2X_33TWN_20240503_L2A"
    assert "time:    none (4 records without a time)" in out


def test_build_over_http_with_storage_options(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path,
    http_server: RangeHTTPServer,
) -> None:
    tifs = sorted(sample_folder.glob("S2X_33TWN_20240503_*.tif"))
    for tif in tifs:
        shutil.copy(tif, Path(http_server.root) / tif.name)
    urls = [http_server.url(tif.name) for tif in tifs]
    code, _, err = run(capsys, "build", *urls, "-o", str(tmp_path / "h.parquet"), "--group-by",
                       GROUP, "--storage-options", '{"timeout": 5, "max_attempts": 2}',
                       "--no-progress")
    assert code == 0, err
    assert xrr.load(tmp_path / "h.parquet").bands == ["B04", "B08"]
    assert http_server.stats.requests >= 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "{d}/missing.parquet"], "missing.parquet': no such file or folder. Build one"),
        (["build", "{d}/missing.json", "-o", "{t}/x.parquet"], "no such file: "),
        (["build", "{d}/missing.tif", "-o", "{t}/x.parquet"], "no such file or folder: "),
        (["build", "{d}/*_B99.tif", "-o", "{t}/x.parquet"], "no file matches "),
        (["build", "{t}", "-o", "{t}/x.parquet"], "holds no .tif or .tiff file"),
        (["build", "{d}/items.json", "{d}/S2X_33TWN_20240503_L2A_B04.tif", "-o", "{t}/x.parquet"],
         "pass it alone"),
        (["build", "{d}/items.json", "-o", "{t}/x.parquet", "--storage-options", "{{bad"],
         "--storage-options is not valid JSON"),
        (["build", "{d}/items.json", "-o", "{t}/x.parquet", "--storage-options", "[1]"],
         "--storage-options must be a JSON object"),
        (["build", "{d}", "-o", "{t}/x.parquet", "--group-by", "(unclosed"],
         "is not a regular expression"),
        (["build", "{d}", "-o", "{t}/x.parquet", "--group-by", "(?P<id>.+)"],
         "needs the named groups (?P<id>...) and (?P<band>...)"),
        (["build", "{d}", "-o", "{t}/x.parquet", "--group-by", r"(?P<id>.+)_(?P<band>X\d)"],
         "file name 'S2X_33TWN_20240503_L2A_B04.tif' does not match --group-by"),
        (["build", "{d}/items.json", "-o", "{t}/x.parquet", "--group-by", GROUP],
         "--group-by applies to COG files"),
        (["build", "{d}/items.json", "-o", "{t}/x.parquet", "--bands", "B11"],
         "bands ['B11'] are in the assets of none of the 4 records"),
    ],
)
def test_errors_are_one_line_with_exit_code_1(
    capsys: pytest.CaptureFixture[str], sample_folder: Path, tmp_path: Path,
    argv: list[str], message: str,
) -> None:
    args = [a.format(d=sample_folder, t=tmp_path) for a in argv]
    if args[0] == "build":
        args.append("--no-progress")
    code, out, err = run(capsys, *args)
    assert (code, out) == (1, "")
    assert message in one_line_error(err)
    assert not (tmp_path / "x.parquet").exists()


def test_debug_shows_the_exception(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        main(["--debug", "info", str(tmp_path / "missing.parquet")])
    assert capsys.readouterr().err == ""


def test_python_m_runs_the_cli_and_errors_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xarray_rasteret", "info", str(tmp_path / "missing.parquet")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "missing.parquet" in one_line_error(done.stderr)
