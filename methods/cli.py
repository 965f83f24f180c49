"""How every command line of the suite ends a refusal: one line naming the file or key, then a non-zero exit.

    if __name__ == "__main__":
        one_line_errors(main, (DatasetError, BudgetError, ...))

An exception of a kind the user can act on (bad input: a missing file, a wrong key, an unknown name, a NaN
loss with the last good checkpoint) prints ``error: <message>`` on stderr, on one line, and exits with status
2; no traceback. ``--debug`` anywhere on the command line (removed before ``main`` sees it) or ``MIM_DEBUG=1``
in the environment re-raises it with its traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

DEBUG_FLAG = "--debug"
DEBUG_ENV = "MIM_DEBUG"


class UserInputError(ValueError):
    """Bad input a user can correct (a name, a file, a key); its message is the one line to act on."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (a KeyError's repr quotes are dropped)."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(part.strip() for part in text.splitlines() if part.strip()) or type(error).__name__


def one_line_errors(
    main: Callable[[list[str]], Any], errors: Sequence[type[BaseException]], argv: list[str] | None = None
) -> NoReturn:
    """Run ``main(argv)`` (default: ``sys.argv[1:]``) and exit: 0 (or main's int status) on success, 2 with
    one line on stderr for an exception in ``errors`` (``UserInputError`` always counts)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        status = main(argv)
    except (UserInputError, *errors) as error:
        if debug:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status if isinstance(status, int) else 0)
