"""`CaptureAnalysis`: capture bytes in, CaptureResult and report out (sans-I/O).

The page's worker and the CLI feed the same object chunk by chunk, so both
produce the same report and memory does not grow with the file.
"""

from __future__ import annotations

from .capture.decoder import PacketDecoder
from .capture.pcapfile import CaptureError, CaptureReader
from .model import CaptureInfo, CaptureResult
from .protocols.rtp import RtpTracker

READ_CHUNK = 1024 * 1024
# One warning per damaged packet would drown the report on a badly broken file.
MAX_PACKET_WARNINGS = 20


class CaptureAnalysis:
    def __init__(self, file_name: str) -> None:
        self._reader = CaptureReader()
        self._result = CaptureResult(capture=CaptureInfo(file=file_name))
        self._rtp = RtpTracker()
        self._decoder = PacketDecoder(self._result, self._rtp)
        self._packets = 0
        self._first_time: float | None = None
        self._last_time: float | None = None
        self._undecodable: list[str] = []
        self._undecodable_count = 0

    def feed(self, data: bytes) -> None:
        records = self._reader.feed(data)
        if not records:
            return
        self._decoder.decode_records(records, self._note_undecodable)
        self._packets += len(records)
        if self._first_time is None:
            self._first_time = records[0][1]
        self._last_time = records[-1][1]

    def _note_undecodable(self, frame: int, error: Exception) -> None:
        self._undecodable_count += 1
        if len(self._undecodable) < MAX_PACKET_WARNINGS:
            self._undecodable.append(f"frame {frame}: could not be decoded ({type(error).__name__}: {error})")

    def finish_result(self) -> CaptureResult:
        """Everything but the report: the facts the analyses read."""
        self._reader.close()  # raises CaptureError for an empty file or a non-capture
        self._decoder.finish()
        info = self._result.capture
        info.format = self._reader.format
        info.packets = self._packets
        info.link_types = sorted(self._reader.link_types)
        info.first_time, info.last_time = self._first_time, self._last_time
        info.warnings = list(self._reader.warnings) + self._decoder.warnings() + self._undecodable
        hidden = self._undecodable_count - len(self._undecodable)
        if hidden:
            info.warnings.append(f"{hidden} more undecodable packets")
        self._result.rtp_streams = self._rtp.streams()
        self._result.tcp_connections = self._decoder.tcp.connections
        return self._result

    def finish(self) -> dict:
        from .report import build_report  # the analyses are only needed for the report

        return build_report(self.finish_result())


def _analysis_of(path: str) -> CaptureAnalysis:
    import os

    analysis = CaptureAnalysis(os.path.basename(path))
    with open(path, "rb") as capture:
        while chunk := capture.read(READ_CHUNK):
            analysis.feed(chunk)
    return analysis


def result_for_path(path: str) -> CaptureResult:
    return _analysis_of(path).finish_result()


def analyze_path(path: str) -> dict:
    return _analysis_of(path).finish()


__all__ = ["CaptureAnalysis", "CaptureError", "analyze_path", "result_for_path"]
