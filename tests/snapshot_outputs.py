"""Prove that a refactor changed nothing the user sees: save, then compare.

    python3 tests/snapshot_outputs.py save DIR      # before the change
    python3 tests/snapshot_outputs.py compare DIR   # after it: exit 1 on any difference

For every shared capture, every fixture and the page's sample it keeps what
the command line gives a user: the report (`analyze --json`), and the
redacted capture and its summary (`redact --key`, a fixed passphrase so the
replacements repeat). The commands run as a user runs them, through
`python3 -m sipdiag`, so the public entry points are what is compared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from locations import FIXTURES, REPO, SHARED_CAPTURES

KEY = "snapshot-key"


def captures() -> list[Path]:
    found = [p for folder in (SHARED_CAPTURES, FIXTURES) for p in sorted(folder.rglob("*"))
             if p.suffix in (".pcap", ".pcapng")]
    return found + [REPO / "static" / "sample.pcap"]


def label(path: Path) -> str:
    """A file name that keeps captures with the same name apart."""
    for top in (SHARED_CAPTURES, REPO):
        if path.is_relative_to(top):
            return str(path.relative_to(top)).replace(os.sep, "__")
    raise ValueError(path)


def sipdiag(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "py"))
    return subprocess.run([sys.executable, "-m", "sipdiag", *args], env=env, capture_output=True, check=False)


def outputs(path: Path) -> dict[str, bytes]:
    """Every byte the CLI gives for one capture, by output name."""
    report = sipdiag("analyze", str(path), "--json")
    with tempfile.TemporaryDirectory() as scratch:
        redacted = Path(scratch) / ("redacted" + path.suffix)
        summary = sipdiag("redact", str(path), "-o", str(redacted), "--key", KEY)
        copy = redacted.read_bytes() if redacted.exists() else b""
    # The summary names the output file, which lives in a fresh folder each run.
    summary_text = summary.stdout.replace(str(redacted).encode(), b"OUTPUT")
    return {
        "report.json": report.stdout + b"exit %d\n" % report.returncode,
        "redact.json": summary_text + b"exit %d\n" % summary.returncode,
        "redacted": copy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "compare"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    files = captures()
    if args.action == "save":
        for path in files:
            for name, data in outputs(path).items():
                (args.folder / f"{label(path)}.{name}").write_bytes(data)
        print(f"saved the outputs of {len(files)} captures in {args.folder}")
        return 0
    # A capture added since the snapshot has nothing to compare with: named, not counted.
    saved = [path for path in files if (args.folder / f"{label(path)}.report.json").exists()]
    for path in sorted(set(files) - set(saved)):
        print(f"new since the snapshot: {path}")
    differences = 0
    for path in saved:
        for name, data in outputs(path).items():
            if (args.folder / f"{label(path)}.{name}").read_bytes() != data:
                differences += 1
                print(f"differs: {path} ({name})")
    print(f"{len(saved)} captures compared: {differences} outputs differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
