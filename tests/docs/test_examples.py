"""Every ```python block of README.md and docs/*.md runs, so no example can rot.

Each block runs in a fresh folder holding a copy of the embedded sample
(``items.json`` and its COGs) and the collection built from it, ``s2.parquet``,
the names the examples use (the ``sample_folder`` fixture). A block that reads
from ``https://data.example.org`` runs against a local range server
(:class:`servers.RangeHTTPServer`) serving that folder: the host is replaced by
the server's URL. A block the tests cannot run says why in its title,
```python title="not run: <reason>"; there are fewer than 3.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from servers import RangeHTTPServer

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REMOTE = "https://data.example.org"
NOT_RUN = "not run: "
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\w*)(?P<info>.*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a markdown page."""

    page: Path
    line: int
    lang: str
    title: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang == "python" and not self.title.startswith(NOT_RUN)


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order, with the line of their opening fence."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        start = _FENCE.match(lines[i])
        i += 1
        if start is None:
            continue
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        title = _TITLE.search(start["info"])
        found.append(
            Block(page, i - len(body) - 1, start["lang"], title["title"] if title else "",
                  textwrap.dedent("\n".join(body)))
        )
    return found


PYTHON = [b for page in PAGES for b in blocks(page) if b.lang == "python"]
RUN = [b for b in PYTHON if b.runs]


@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_example_runs(
    block: Block, sample_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    shutil.copytree(sample_folder, work)
    monkeypatch.chdir(work)
    scope: dict[str, object] = {"__name__": "__main__"}
    server = RangeHTTPServer(work) if REMOTE in block.code else None
    with server or contextlib.nullcontext():
        source = block.code.replace(REMOTE, server.url().rstrip("/")) if server else block.code
        exec(compile(source, block.name, "exec"), scope)
    if server is not None:
        assert server.stats.requests > 0, f"{block.name} made no request to the server"
    assert len(scope) > 1, f"{block.name} defined nothing"


def test_every_page_is_scanned_and_has_examples() -> None:
    assert {p.name for p in PAGES} >= {"README.md", "index.md", "reading.md", "storage.md"}
    assert len(RUN) >= 8, [b.name for b in RUN]


def test_few_blocks_are_not_run_and_each_says_why() -> None:
    skipped = [b for b in PYTHON if not b.runs]
    assert len(skipped) < 3, [b.name for b in skipped]
    for b in skipped:
        assert len(b.title) > len(NOT_RUN) + 5, f"{b.name}: say why it is not run"


def test_fences_are_parsed(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        'text\n```python\nx = 1\n```\n- item\n\n  ```python title="not run: needs AWS"\n'
        "  y = 2\n  ```\n```bash\nls\n```\n"
    )
    found = blocks(page)
    assert [(b.line, b.lang, b.title, b.code) for b in found] == [
        (2, "python", "", "x = 1"),
        (7, "python", "not run: needs AWS", "y = 2"),
        (10, "bash", "", "ls"),
    ]
    assert [b.runs for b in found] == [True, False, False]
