"""Modules stay under 600 lines; a function over 100 lines says why in a comment above it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "xarray_rasteret"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert long == {}


def _reason_above(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A comment on one of the three lines above the function (or its decorators)."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = lines[max(0, first - 4) : first - 1]
    return any(line.strip().startswith("#") for line in above)


def test_long_functions_say_why():
    unexplained = []
    for path in _modules():
        text = path.read_text()
        lines = text.split("\n")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and not _reason_above(lines, node):
                    unexplained.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert unexplained == []
