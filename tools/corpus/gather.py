"""Regenerate the real-world TIFF corpus under ``tests/data/corpus`` from git mirrors.

Dev-only: ``python tools/corpus/gather.py [--mirrors DIR] [--out DIR]``.

Each source is the public test suite of a TIFF or GeoTIFF reader, read from a
bare git mirror (``<mirrors>/<owner>+<name>/repo``, as the project's ``fetch``
tool lays them out) at its ``HEAD`` commit. Every ``.tif``/``.tiff``/``.gtif``
file under the source's folders that is at most ``max_bytes`` is copied to
``<out>/<project>/<path below the folder>``, beside the project's licence
files; a file whose bytes were already taken from an earlier source is
skipped (the corpus holds each distinct file once). ``tools/corpus/MANIFEST.csv``
records, per file, the source repository, commit and path, its size and SHA-256,
so the set can be checked and rebuilt. The files themselves are not committed
(``tests/data/corpus`` is ignored by git): they come from snapshots of other
projects, which this repository does not redistribute.

Only sources whose licence allows redistribution are listed (MIT/X, BSD-3,
Apache-2, the libtiff licence, CC0/public domain). GDAL's autotest suite is
not among them: its snapshot is larger than the mirror tool can bring here.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "data" / "corpus"
DEFAULT_MIRRORS = Path("/work/.mirror")
MANIFEST = ROOT / "tools" / "corpus" / "MANIFEST.csv"
"""The committed record of the set: file, source repository, commit, path, size, SHA-256."""
SUFFIXES = (".tif", ".tiff", ".gtif")
MB = 1_000_000
TOTAL_BUDGET = 40 * MB


@dataclass(frozen=True)
class Source:
    """One project's test files: where they live and which licence files go beside them."""

    project: str
    repo: str
    folders: tuple[str, ...]
    licenses: tuple[str, ...]
    max_bytes: int = 2 * MB
    #: why each of the licence files applies (written to the project's SOURCE.txt)
    note: str = ""


SOURCES = (
    Source(
        "libgeotiff",
        "OSGeo/libgeotiff",
        ("libgeotiff/test/data/",),
        ("libgeotiff/LICENSE",),
        note="libgeotiff: public domain / MIT (X Consortium), see LICENSE.",
    ),
    Source(
        "rasterio",
        "rasterio/rasterio",
        ("tests/data/",),
        ("LICENSE.txt",),
        max_bytes=MB,
        note="rasterio: BSD-3-Clause, see LICENSE.txt.",
    ),
    Source(
        "rioxarray",
        "corteva/rioxarray",
        ("test/test_data/",),
        ("LICENSE",),
        note="rioxarray: Apache-2.0, see LICENSE.",
    ),
    Source(
        "async-tiff",
        "developmentseed/async-tiff",
        ("fixtures/",),
        ("LICENSE", "fixtures/image-tiff/COPYRIGHT"),
        note="async-tiff: MIT (LICENSE); the image-tiff fixtures carry the libtiff "
        "licence (COPYRIGHT).",
    ),
    Source(
        "image-tiff",
        "image-rs/image-tiff",
        ("tests/",),
        ("LICENSE", "tests/COPYRIGHT", "tests/images/COPYRIGHT", "tests/libtiffpic/README"),
        note="image-tiff: MIT (LICENSE); tests/images under the libtiff licence "
        "(images/COPYRIGHT); libtiffpic and usda files CC0 / public domain (COPYRIGHT).",
    ),
    Source(
        "georust-gdal",
        "georust/gdal",
        ("fixtures/",),
        ("LICENSE.txt",),
        note="georust/gdal: MIT, see LICENSE.txt.",
    ),
    # COG fixtures: many near-copies of a few scenes, so only the smaller ones.
    Source(
        "rio-tiler",
        "cogeotiff/rio-tiler",
        ("tests/fixtures/",),
        ("LICENSE",),
        max_bytes=MB,
        note="rio-tiler: BSD-3-Clause, see LICENSE.",
    ),
    Source(
        "rio-cogeo",
        "cogeotiff/rio-cogeo",
        ("tests/fixtures/",),
        ("LICENSE",),
        max_bytes=MB,
        note="rio-cogeo: BSD-3-Clause, see LICENSE.",
    ),
)


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True
    ).stdout


def _listing(git_dir: Path, commit: str) -> list[tuple[str, int, str]]:
    """(path, size, blob id) of every blob in ``commit``."""
    out = []
    for line in _git(git_dir, "ls-tree", "-r", "-l", "-z", commit).split(b"\0"):
        if not line:
            continue
        meta, path = line.split(b"\t", 1)
        _mode, kind, blob, size = meta.split()
        # Blobs the mirror does not hold (LFS, 4 MiB and over) show a non-numeric size.
        if kind == b"blob" and size.isdigit():
            out.append((path.decode(), int(size), blob.decode()))
    return out


def gather(mirrors: Path, out: Path) -> list[dict[str, str]]:
    """Copy every source's files into ``out`` and return the manifest rows."""
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    total = 0
    for src in SOURCES:
        git_dir = mirrors / src.repo.replace("/", "+") / "repo"
        if not git_dir.exists():
            sys.exit(f"{src.repo}: no mirror at {git_dir}; fetch github:{src.repo} first")
        commit = _git(git_dir, "rev-parse", "HEAD").decode().strip()
        listing = _listing(git_dir, commit)
        dest = out / src.project
        dest.mkdir(parents=True, exist_ok=True)
        for lic in src.licenses:
            # A licence inside a copied folder stays where it is (beside the files it
            # covers); one from the repository root goes to the project's folder.
            inner = next((f for f in src.folders if lic.startswith(f)), None)
            target = dest / (lic[len(inner) :] if inner else Path(lic).name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_git(git_dir, "show", f"{commit}:{lic}"))
        (dest / "SOURCE.txt").write_text(
            f"Files copied from https://github.com/{src.repo} at commit {commit}\n"
            f"by tools/corpus/gather.py (listed in tools/corpus/MANIFEST.csv).\n{src.note}\n"
        )
        for path, size, blob in sorted(listing):
            folder = next((f for f in src.folders if path.startswith(f)), None)
            if folder is None or not path.lower().endswith(SUFFIXES):
                continue
            if size > src.max_bytes or total + size > TOTAL_BUDGET:
                continue
            data = _git(git_dir, "cat-file", "blob", blob)
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            target = dest / path[len(folder) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            total += size
            rows.append(
                {
                    "file": target.relative_to(out).as_posix(),
                    "repo": src.repo,
                    "commit": commit,
                    "path": path,
                    "bytes": str(size),
                    "sha256": digest,
                }
            )
    with MANIFEST.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows = gather(args.mirrors, args.out)
    size = sum(int(r["bytes"]) for r in rows)
    print(f"{len(rows)} files, {size / MB:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
