"""`CaptureAnalysis`: capture bytes in, CaptureResult and report out (sans-I/O).

The page's worker and the CLI feed the same object chunk by chunk, so both
produce the same report and memory does not grow with the file. The bytes go
straight into the scan kernel's memory (`reserve` an address, write there,
`commit`), which walks them; `feed(bytes)` does the same for callers holding bytes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter, itemgetter

from .capture.decoder import PacketDecoder
from .capture.pcapfile import CaptureError
from .capture.scan import Kernel, KernelFed, KernelReader
from .model import CaptureInfo, CaptureResult, SipMessage
from .protocols.rtp import RtpTracker

# One warning per damaged packet would drown the report on a badly broken file.
MAX_PACKET_WARNINGS = 20
# A search reads every message's text: the file is then read in spans of up to
# this many bytes, each holding many messages, not in one read per message.
READ_SPAN = 4 * 1024 * 1024


class CaptureAnalysis(KernelFed):
    """keep_text=False: a message whose bytes are one slice of the file keeps
    only where they are (`SipMessage.source`), not the bytes, and the report
    leaves the text out; `message_text(frame, read)` reads it back. Messages
    reassembled from several packets (TCP, IP fragments, SCTP pieces),
    unmasked (WebSocket) or from a gzip-compressed file keep their bytes."""

    def __init__(self, file_name: str, keep_text: bool = True) -> None:
        self._keep_text = keep_text
        self._result = CaptureResult(capture=CaptureInfo(file=file_name))
        kernel = Kernel()
        self._rtp = RtpTracker(kernel)
        self._decoder = PacketDecoder(self._result, self._rtp)
        self._reader = KernelReader(kernel, self._decoded, self._note_undecodable, self._rtp.raised,
                                    offsets=not keep_text)
        self._undecodable: list[str] = []
        self._undecodable_count = 0

    def _decoded(self, records: list) -> None:
        messages = self._result.sip_messages
        known = len(messages)
        self._decoder.decode_records(records, self._note_undecodable)
        if not self._keep_text and len(messages) > known and not self._reader.reader.compressed:
            self._locate(records, self._reader.record_offsets, messages[known:])

    @staticmethod
    def _locate(records: list, offsets: list[int], messages: list[SipMessage]) -> None:
        """Where in the file each new message's bytes are, when its last packet holds them whole."""
        index = {record[0]: number for number, record in enumerate(records)}
        for message in messages:
            number = index.get(message.frame)
            if number is None:
                continue
            # The first occurrence: any other would be the same bytes, so the same text.
            start = records[number][3].find(message.raw)
            if start >= 0 and message.raw:
                message.source = (offsets[number] + start, len(message.raw))
                message.raw = b""

    def message_text(self, frame: int, read: Callable[[int, int], bytes], index: int = 0) -> str | None:
        """The text the report would carry for the index-th message of this frame (after
        `finish`); `read(offset, length)` gives bytes of the file. None: no such message."""
        from .report import message_text

        messages = self._result.sip_messages
        first = bisect.bisect_left(messages, frame, key=attrgetter("frame"))
        position = first + index
        if position >= len(messages) or messages[position].frame != frame:
            return None
        message = messages[position]
        if message.source is None:
            return message_text(message.raw)
        offset, length = message.source
        return message_text(read(offset, length))

    def message_texts(self, positions: Iterable[int], read: Callable[[int, int], bytes]) -> Iterator[tuple[int, str]]:
        """(position, text) of the messages at these positions of the report's
        `sip_messages` (after `finish`), the text as `message_text` gives it, in
        no particular order: the kept bytes first, then the file's in file
        order, several messages to a read of at most READ_SPAN bytes."""
        from .report import message_text

        messages = self._result.sip_messages
        located = []
        for position in positions:
            message = messages[position]
            if message.source is None:
                yield position, message_text(message.raw)
            else:
                located.append((*message.source, position))
        located.sort()
        start = 0
        while start < len(located):
            first = located[start][0]
            end, last = start + 1, first + located[start][1]
            while end < len(located) and located[end][0] + located[end][1] - first <= READ_SPAN:
                last = max(last, located[end][0] + located[end][1])
                end += 1
            span = read(first, last - first)
            for offset, length, position in located[start:end]:
                yield position, message_text(span[offset - first:offset - first + length])
            start = end

    def row_text(self, rows: list[dict], read: Callable[[int, int], bytes]) -> Callable[[dict], str | None]:
        """text(row): the text of a row of `rows`, this analysis's report's
        `sip_messages` list (what the ladders read an SDP message's media from)."""

        def text(row: dict) -> str | None:
            first = bisect.bisect_left(rows, row["frame"], key=itemgetter("frame"))
            position = next((k for k in range(first, len(rows)) if rows[k] is row), None)
            if position is None:
                return None
            return next(self.message_texts([position], read))[1]

        return text

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

    def finish(self, streamed_messages: bool = False) -> dict:
        """The report; streamed_messages: its sip_messages as a one-pass iterator (report.build_report)."""
        from .report import build_report  # the analyses are only needed for the report

        return build_report(self.finish_result(), with_text=self._keep_text, streamed_messages=streamed_messages)


def analysis_of(path: str, keep_text: bool = True) -> CaptureAnalysis:
    """The analysis of a file, read to its end (`finish` gives the report)."""
    import os

    analysis = CaptureAnalysis(os.path.basename(path), keep_text)
    with open(path, "rb", buffering=0) as capture:
        while analysis.readinto(capture):
            pass
    return analysis


def result_for_path(path: str) -> CaptureResult:
    return analysis_of(path).finish_result()


def analyze_path(path: str, with_text: bool = True, streamed_messages: bool = False) -> dict:
    return analysis_of(path, with_text).finish(streamed_messages)


def file_reader(path: str) -> Callable[[int, int], bytes]:
    """read(offset, length) over a file, for `CaptureAnalysis.message_text`."""

    def read(offset: int, length: int) -> bytes:
        with open(path, "rb") as capture:
            capture.seek(offset)
            return capture.read(length)

    return read


__all__ = ["CaptureAnalysis", "CaptureError", "analysis_of", "analyze_path", "file_reader", "result_for_path"]
