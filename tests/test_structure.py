"""Size limits of the code (issue 19): no module over 900 lines, no function over 100.

A function's length runs from its ``def`` line (decorators excluded) to its last line,
without its docstring; nested functions count in their parent and are checked alone too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["diagnosis", "data_sources", "app_pages", "app.py"]
MAX_MODULE_LINES = 900
MAX_FUNCTION_LINES = 100


def _sources() -> list[Path]:
    files: list[Path] = []
    for name in CHECKED:
        path = ROOT / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, length without docstring)`` of every function."""
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                body = child.body
                if (body and isinstance(body[0], ast.Expr)
                        and isinstance(body[0].value, ast.Constant)
                        and isinstance(body[0].value.value, str)):
                    doc = body[0]
                    length -= (doc.end_lineno or doc.lineno) - doc.lineno + 1
                out.append((prefix + child.name, child.lineno, length))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out


def test_function_lengths_count_code_not_docstrings():
    source = (
        "def f(x):\n"
        '    """Doc\n\n    on three lines.\n    """\n'
        "    y = x\n"
        "    return y\n"
        "class C:\n"
        "    def m(self):\n"
        "        def inner():\n"
        "            return 1\n"
        "        return inner()\n"
    )
    assert function_lengths(source) == [("f", 1, 3), ("C.m", 9, 4), ("C.m.inner", 10, 2)]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path: Path):
    source = path.read_text(encoding="utf-8")
    lines = source.count("\n") + (not source.endswith("\n"))
    assert lines <= MAX_MODULE_LINES, (
        f"{path.relative_to(ROOT)}: {lines} lines, more than {MAX_MODULE_LINES}; split it "
        "by topic")
    too_long = [(name, line, length) for name, line, length in function_lengths(source)
                if length > MAX_FUNCTION_LINES]
    assert not too_long, (
        f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines (docstring "
        f"excluded): {too_long}")
