"""Wall time, CPU time and peak memory of processes: a child command, or a browser's process tree.

CPU time is given beside wall time because the machine is often shared: on a
loaded machine each process waits for a core, and CPU seconds say what the
work itself costs."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class CommandRun:
    seconds: float
    peak_mb: float  # the child's maximum resident set size
    returncode: int
    stdout: bytes
    cpu_seconds: float = 0.0  # user + system time of the command: on a shared machine, the figure that
                              # does not depend on what else runs


def run_command(command: list[str], env: dict | None = None, cwd: Path | None = None,
                keep_stdout: bool = False, stdout_path: Path | None = None) -> CommandRun:
    """Run a command to the end, with its peak RSS as GNU time measures it.

    Not our own wait4 rusage: Linux carries the forking parent's high-water
    RSS (this process, with Playwright loaded) into the child's ru_maxrss
    across exec. /usr/bin/time is small, so the figure it reports is the
    command's own. `stdout_path` receives the output instead of memory (a
    report of gigabytes).
    """
    with (tempfile.NamedTemporaryFile("r", suffix=".maxrss") as maxrss,
          open(stdout_path or os.devnull, "wb") as output):
        started = time.perf_counter()
        completed = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", maxrss.name, *command], env=env, cwd=cwd,
                                   stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE if keep_stdout else output)
        seconds = time.perf_counter() - started
        # On failure time writes "Command exited with non-zero status N" before the figure.
        *_, user, system, kilobytes = maxrss.read().split()
    return CommandRun(seconds, int(kilobytes) * 1024 / 1e6, completed.returncode, completed.stdout or b"",
                      float(user) + float(system))


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # comm may contain spaces and parentheses: the parent pid follows the last ")".
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree = children_of()
    found, stack = [], [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def command_line(pid: int) -> list[str]:
    """The arguments; Chromium's zygote children rewrite theirs into one space-separated string."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
    except OSError:
        return []


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 once it ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0  # the process ended between listing and reading


class BrowserMemorySampler:
    """Peak RSS of Chromium's processes under this one, sampled from /proc.

    Two figures: the largest renderer process, which is the page under test
    (its Web Worker, Pyodide's wasm heap included, is a thread of that
    process; the other renderers are Chromium's idle spares), and the sum over
    every Chromium process (browser, utility, GPU and all renderers; shared
    pages count once per process, so that sum is an upper bound).
    """

    def __init__(self, program_name: str = "chromium", interval: float = 0.05):
        self.program_name = program_name  # /usr/bin/chromium is a script that runs /usr/lib/chromium/chromium
        self.interval = interval
        self.peak_renderer = 0
        self.peak_all = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> tuple[int, int]:
        """(largest renderer RSS, sum of all Chromium RSS) in bytes, now."""
        renderer = everything = 0
        for pid in descendants(os.getpid()):
            arguments = command_line(pid)
            if not arguments or Path(arguments[0]).name != self.program_name:
                continue  # the Playwright driver (node) is ours too, but not the browser
            rss = rss_bytes(pid)
            everything += rss
            if "--type=renderer" in arguments:
                renderer = max(renderer, rss)
        return renderer, everything

    def cpu_seconds(self) -> float:
        """CPU time Chromium's processes have used so far (the difference over a job is its cost)."""
        pids = [pid for pid in descendants(os.getpid())
                if (arguments := command_line(pid)) and Path(arguments[0]).name == self.program_name]
        return sum(cpu_ticks(pid) for pid in pids) / os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self._stop.is_set():
            renderer, everything = self.sample()
            self.peak_renderer = max(self.peak_renderer, renderer)
            self.peak_all = max(self.peak_all, everything)
            self._stop.wait(self.interval)

    def __enter__(self) -> BrowserMemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
