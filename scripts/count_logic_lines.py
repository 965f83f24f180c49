"""Count each method folder's own-logic lines: the code a reader of the method has to read.

    python scripts/count_logic_lines.py [METHODS_DIR]

A method folder's model code is ``model.py`` plus every other module it owns, except ``config.py`` (its keys),
``recipes.py`` (its evaluation recipes), ``convert.py`` (checkpoint conversion) and ``__init__.py``. A line
counts when it holds code: blank lines, comments, docstrings (module, class and function) and import
statements do not.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

NOT_MODEL_CODE = ("config.py", "recipes.py", "convert.py", "__init__.py")
NON_CODE_TOKENS = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def logic_lines(source: str) -> int:
    """Physical lines holding code, less docstrings and imports."""
    code = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NON_CODE_TOKENS:
            code.update(range(token.start[0], token.end[0] + 1))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            code -= set(range(node.lineno, node.end_lineno + 1))
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                code -= set(range(first.lineno, first.end_lineno + 1))
    return len(code)


def model_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if p.name not in NOT_MODEL_CODE)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "methods"
    for folder in sorted(p.parent for p in root.glob("*/config.py")):
        files = model_files(folder)
        counts = {f.name: logic_lines(f.read_text()) for f in files}
        detail = " + ".join(f"{name} {n}" for name, n in counts.items())
        print(f"{folder.name:10s} {sum(counts.values()):4d}   ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
