"""Compare the golden traces with their committed files, or refresh them on purpose.

    python -m tests.golden                          # run every trace and compare; exit 1 on a mismatch
    python -m tests.golden --only mae,rcmae         # some traces
    python -m tests.golden --update [--only NAME]   # rewrite the files, printing what moved and by how much
    python -m tests.golden --list                   # the trace names
    python -m tests.golden --threads 2              # run with 2 threads (a check that CI will not flake)

Refresh only after a deliberate change of what is computed, and say what and why in the commit message;
never to make a refactor pass (tests/golden/__init__.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.golden.compare import compare  # noqa: E402
from tests.golden.traces import Setting, Trace, read_trace, run_trace, trace_names, trace_path  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--update", action="store_true", help="rewrite the trace files (a deliberate change only)")
    p.add_argument("--only", default=None, help="comma-separated trace names (default: every trace)")
    p.add_argument("--list", action="store_true", help="print the trace names and exit")
    p.add_argument("--threads", type=int, default=1, help="torch threads per trace (recorded with 1)")
    p.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    p.add_argument("--verbose", action="store_true", help="show the runs' own logs")
    return p.parse_args(argv)


def selected(only: str | None) -> list[str]:
    names = trace_names()
    if only is None:
        return names
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SystemExit(f"tests.golden: unknown trace(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return wanted


def run_quietly(name: str, setting: Setting, threads: int, verbose: bool) -> tuple[Trace, str]:
    """The trace, and the run's own output (mmengine's logs, progress bars) captured unless ``verbose``."""
    if verbose:
        return run_trace(name, setting, threads), ""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        trace = run_trace(name, setting, threads)
    return trace, out.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = selected(args.only)
    if args.list:
        print("\n".join(names))
        return 0
    with contextlib.ExitStack() as stack:
        work = args.work or stack.enter_context(tempfile.TemporaryDirectory(prefix="golden-"))
        setting = Setting(work)
        failed = []
        largest = (0.0, "")
        for name in names:
            start = time.perf_counter()
            current, log = run_quietly(name, setting, args.threads, args.verbose)
            took = f"{time.perf_counter() - start:5.1f} s"
            path = trace_path(name)
            recorded = read_trace(name) if path.is_file() else None
            if current.error:
                print(f"{name}: the run raised {current.error}\n{log[-3000:]}", file=sys.stderr)
            if args.update:
                if recorded is None:
                    print(f"{name:24s} {took}  new trace")
                else:
                    result = compare(recorded, current)
                    verdict = "unchanged" if result.ok else f"{len(result.differences)} numbers moved"
                    print(f"{name:24s} {took}  {verdict}")
                    for d in result.differences[:10]:
                        print(f"    {d}")
                    if len(result.differences) > 10:
                        print(f"    ... and {len(result.differences) - 10} more")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(current.to_json())
                continue
            if recorded is None:
                print(f"{name:24s} {took}  NO TRACE FILE ({path}): record it with --update --only {name}")
                failed.append(name)
                continue
            result = compare(recorded, current)
            largest = max(largest, (result.max_relative, name))
            print(f"{name:24s} {took}  " + ("ok" if result.ok else "MISMATCH"), end="")
            print(f" (largest relative difference {result.max_relative:.1e})" if result.ok else "")
            if not result.ok:
                print("    " + result.message().replace("\n", "\n    "))
                failed.append(name)
    if failed:
        print(f"{len(failed)} of {len(names)} traces differ: {', '.join(failed)}")
        return 1
    if args.update:
        print(f"{len(names)} traces written")
    else:
        worst, where = largest
        print(f"{len(names)} traces match; largest relative difference {worst:.1e} ({where or '-'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
