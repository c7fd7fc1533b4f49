"""Compile scan.c to scan.wasm with Debian's clang and lld (the committed .wasm is this output).

    python3 py/sipdiag/capture/kernel/build_kernel.py [OUT.wasm]

tests/test_kernel_build.py runs it and fails when the bytes differ from the
committed scan.wasm, so the binary the page and the CLI run is the source's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "scan.c"
WASM = HERE / "scan.wasm"
# -ffp-contract=off: no fused multiply-add, so the doubles are Python's, operation by operation.
WASM_FLAGS = ["--target=wasm32-unknown-unknown", "-O3", "-nostdlib", "-fno-builtin", "-ffp-contract=off",
              "-Wall", "-Wextra", "-Werror", "-Wl,--no-entry", "-Wl,--strip-all"]


def build(out: Path = WASM) -> Path:
    subprocess.run(["clang", *WASM_FLAGS, "-o", str(out), str(SOURCE)], check=True)
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else WASM))
