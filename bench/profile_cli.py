#!/usr/bin/env python3
"""Where the CLI's analysis spends its time: cProfile of analyze_path, top functions by own time.

    python3 bench/profile_cli.py CAPTURE [--top 15]

In-process (the same calls as `python3 -m sipdiag analyze CAPTURE --json`
minus printing the JSON), so the profile shows the engine, not process start.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))
from sipdiag.engine import analyze_path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    profile = cProfile.Profile()
    report = profile.runcall(analyze_path, str(args.capture))
    print(f"{args.capture.name}: {report['capture']['packets']} packets")
    pstats.Stats(profile, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
