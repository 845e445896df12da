"""The tooling stays small: code lines (non-blank, neither a comment nor a docstring) of `load/src` and `tools/`
together stay under a bar, so a change that grows them has to pay for itself by shrinking something else."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAR = 6200


def code_lines(source: str) -> int:
    """Lines that hold code: not blank, not only a comment, not inside a module, class or function docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


def test_code_lines_count_neither_comments_nor_docstrings() -> None:
    source = (
        '"""Module.\n\nMore."""\n\n# a comment\nX = 1  # counted\n\n\n'
        'def f() -> None:\n    """Doc."""\n    return None\n'
    )
    assert code_lines(source) == 3


def test_the_tooling_stays_under_its_bar() -> None:
    files = [*(ROOT / "load" / "src").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]
    total = sum(code_lines(path.read_text()) for path in files)
    assert total <= BAR, f"load/src and tools/ hold {total} code lines, over the bar of {BAR}: shrink before adding"
