"""`make bench`: every benchmark in bench/, one after the other, each in its own process.

    .venv/bin/python -m bench [--only streaming,gateway] [--skip sandbox]

The known benches run first, in this order: routing_quality, routing_speed, sandbox,
streaming, gateway, batch (when bench/batch.py exists); then any other module of bench/
that runs as a script (it has an `if __name__ == "__main__":` block), by name. Each prints
its own figures; a bench that fails does not stop the others, and the exit status says
whether all of them passed. Figures go to bench/RESULTS.md by hand, with the date and the
machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("routing_quality", "routing_speed", "sandbox", "streaming", "gateway", "batch")


def benches() -> list[str]:
    scripts = {p.stem for p in HERE.glob("*.py")
               if not p.stem.startswith("_") and 'if __name__ == "__main__":' in p.read_text()}
    return [name for name in ORDER if name in scripts] + sorted(scripts - set(ORDER))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--skip", default="", help="comma-separated bench names")
    args = parser.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    failed = []
    for name in benches():
        if (only and name not in only) or name in skip:
            continue
        print(f"\n=== bench.{name}", flush=True)
        started = time.monotonic()
        status = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent).returncode
        print(f"=== bench.{name}: {'ok' if status == 0 else f'failed (exit {status})'} "
              f"in {time.monotonic() - started:.0f} s", flush=True)
        if status != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
