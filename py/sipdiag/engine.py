"""`CaptureAnalysis`: capture bytes in, CaptureResult and report out (sans-I/O).

The page's worker and the CLI feed the same object chunk by chunk, so both
produce the same report and memory does not grow with the file. The bytes go
straight into the scan kernel's memory (`reserve` an address, write there,
`commit`), which walks them; `feed(bytes)` does the same for callers holding bytes.
"""

from __future__ import annotations

from .capture.decoder import PacketDecoder
from .capture.pcapfile import CaptureError
from .capture.scan import Kernel, KernelReader
from .model import CaptureInfo, CaptureResult
from .protocols.rtp import RtpTracker

READ_CHUNK = 1024 * 1024
# One warning per damaged packet would drown the report on a badly broken file.
MAX_PACKET_WARNINGS = 20


class CaptureAnalysis:
    def __init__(self, file_name: str) -> None:
        self._result = CaptureResult(capture=CaptureInfo(file=file_name))
        kernel = Kernel()
        self._rtp = RtpTracker(kernel)
        self._decoder = PacketDecoder(self._result, self._rtp)
        self._reader = KernelReader(kernel, self._decoded, self._note_undecodable, self._rtp.raised)
        self._undecodable: list[str] = []
        self._undecodable_count = 0

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def reserve(self, size: int) -> int:
        """The address in kernel memory where the next `size` bytes of the file go (then `commit`)."""
        return self._reader.reserve(size)

    def commit(self, size: int) -> None:
        self._reader.commit(size)

    def readinto(self, file, size: int = READ_CHUNK) -> int:
        """Up to `size` bytes of an open file, read straight into the kernel; 0 at its end."""
        return self._reader.readinto(file, size)

    @property
    def kernel_memory(self):
        """The kernel's linear memory as its host knows it (in the page, the WebAssembly.Memory
        the worker writes file slices into, at the address `reserve` gave)."""
        return self._reader.kernel.instance.memory

    def _decoded(self, records: list) -> None:
        self._decoder.decode_records(records, self._note_undecodable)

    def _note_undecodable(self, frame: int, error: Exception) -> None:
        self._undecodable_count += 1
        if len(self._undecodable) < MAX_PACKET_WARNINGS:
            self._undecodable.append(f"frame {frame}: could not be decoded ({type(error).__name__}: {error})")

    def finish_result(self) -> CaptureResult:
        """Everything but the report: the facts the analyses read."""
        state = self._reader.close()  # raises CaptureError for an empty file or a non-capture
        self._decoder.finish()
        reader = self._reader.reader
        info = self._result.capture
        info.format = reader.format
        info.packets = state["yielded"]
        info.link_types = sorted(reader.link_types)
        if state["yielded"]:
            info.first_time, info.last_time = state["first_time"], state["last_time"]
        info.warnings = list(reader.warnings) + self._decoder.warnings() + self._undecodable
        hidden = self._undecodable_count - len(self._undecodable)
        if hidden:
            info.warnings.append(f"{hidden} more undecodable packets")
        info.warnings += [f"The scan kernel's table of {name} is full: later ones were not counted."
                          for name in self._reader.kernel.tables_full()]
        self._result.rtp_streams = self._rtp.streams()
        self._result.tcp_connections = self._decoder.tcp.connections
        return self._result

    def finish(self) -> dict:
        from .report import build_report  # the analyses are only needed for the report

        return build_report(self.finish_result())


def _analysis_of(path: str) -> CaptureAnalysis:
    import os

    analysis = CaptureAnalysis(os.path.basename(path))
    with open(path, "rb", buffering=0) as capture:
        while analysis.readinto(capture):
            pass
    return analysis


def result_for_path(path: str) -> CaptureResult:
    return _analysis_of(path).finish_result()


def analyze_path(path: str) -> dict:
    return _analysis_of(path).finish()


__all__ = ["CaptureAnalysis", "CaptureError", "analyze_path", "result_for_path"]
