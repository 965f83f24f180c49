"""The refusals every command line of ``reproduce/`` ends with one line (``methods.cli``): bad input a user
can correct, found before any work where possible (a missing dataset root, an unknown budget, method or
recipe, an encoder file that does not load strictly) or during a run (a NaN loss, with the last good
checkpoint named).

    if __name__ == "__main__":
        cli.run(main)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from downstream.datasets.errors import DatasetError
from downstream.recipe import RecipeError
from methods.cli import one_line_errors
from methods.clip_teacher import CLIPFormatError
from methods.encoder_file import EncoderLoadError
from reproduce.budget import BudgetError
from tables.paper_numbers import PaperNumbersError
from tables.records import RecordError

#: what a command line reports in one line (``methods.cli.UserInputError`` always counts)
USER_ERRORS = (
    DatasetError,
    RecipeError,
    CLIPFormatError,
    EncoderLoadError,
    BudgetError,
    PaperNumbersError,
    RecordError,
    FloatingPointError,  # a non-finite loss: the message names the step and the last good checkpoint
)


def run(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> NoReturn:
    """``main(argv)`` (default ``sys.argv[1:]``); a refusal prints one line and exits 2 (``--debug``: the
    traceback)."""
    one_line_errors(main, USER_ERRORS, argv)
