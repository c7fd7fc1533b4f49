"""`CaptureAnalysis`: capture bytes in, CaptureResult and report out (sans-I/O).

The page's worker and the CLI feed the same object chunk by chunk, so both
produce the same report and memory does not grow with the file. The bytes go
straight into the scan kernel's memory (`reserve` an address, write there,
`commit`), which walks them; `feed(bytes)` does the same for callers holding bytes.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
from array import array
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter

from .capture.decoder import PacketDecoder
from .capture.pcapfile import CaptureError
from .capture.scan import Kernel, KernelFed, KernelReader
from .model import CaptureInfo, CaptureResult, SipMessage
from .protocols.sip import forget_shared_values
from .protocols.rtp import RtpTracker

# One warning per damaged packet would drown the report on a badly broken file.
MAX_PACKET_WARNINGS = 20
# A search reads every message's text: the file is then read in spans of up to
# this many bytes, each holding many messages, not in one read per message.
READ_SPAN = 4 * 1024 * 1024


@contextlib.contextmanager
def collector_paused():
    """CPython's cyclic collector off for one step (the analyses). What the
    engine keeps (messages, transactions, dialogs, rows) piles up by the
    hundred thousand and holds no cycles, yet each full collection would walk
    all of it again: a quarter of a SIP-only capture's CPU time
    (bench/phases.py). Whatever cycles the step leaves are collected after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def collect_abandoned() -> None:
    """Free now what an analysis dropped before its end kept: its objects are frozen
    (CaptureAnalysis._decoded) and form cycles (the analysis and its reader), so
    only an unfreeze and a collection let them go. The page's memory guard calls
    this, so the next capture is measured against an engine back at rest."""
    gc.unfreeze()
    gc.collect()


class CaptureAnalysis(KernelFed):
    """keep_text=False: a message whose bytes are one slice of the file keeps
    only where they are (`SipMessage.source`), not the bytes, and the report
    leaves the text out; `texts()` reads it back (MessageTexts). Messages
    reassembled from several packets (TCP, IP fragments, SCTP pieces),
    unmasked (WebSocket) or from a gzip-compressed file keep their bytes."""

    def __init__(self, file_name: str, keep_text: bool = True) -> None:
        self._keep_text = keep_text
        gc.unfreeze()  # see _decoded
        forget_shared_values()  # what an abandoned analysis (the page's memory guard) left
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
        # What the capture's reading keeps is left out of the cyclic collector's
        # walks from now on (collector_paused says why; reading is many steps,
        # so pausing is no use there). Reference counting still frees a frozen
        # object once let go; a new analysis unfreezes, so a cycle frozen
        # here is collected by then.
        gc.freeze()
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

    @property
    def messages_read(self) -> int:
        """SIP messages decoded so far: the page's progress says how many, and its memory guard when it stops reading."""
        return len(self._result.sip_messages)

    def texts(self) -> MessageTexts:
        """Where each message's text is (after `finish`): what reads it back, without the messages."""
        return MessageTexts(self._result.sip_messages)

    def _note_undecodable(self, frame: int, error: Exception) -> None:
        self._undecodable_count += 1
        if len(self._undecodable) < MAX_PACKET_WARNINGS:
            self._undecodable.append(f"frame {frame}: could not be decoded ({type(error).__name__}: {error})")

    def finish_result(self) -> CaptureResult:
        """Everything but the report: the facts the analyses read."""
        try:
            state = self._reader.close()  # raises CaptureError for an empty file or a non-capture
            self._decoder.finish()
        finally:
            forget_shared_values()
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

        with collector_paused():
            return build_report(self.finish_result(), with_text=self._keep_text, streamed_messages=streamed_messages)


class MessageTexts:
    """The text of a report's SIP messages, read back from the capture: per
    message, in the report's order, its frame and where its bytes are in the
    file, or the bytes themselves for the messages that keep them (reassembled,
    unmasked, inflated: CaptureAnalysis). Compact arrays, not the messages: the
    page's worker keeps this beside the report, and lets the analysis go.
    `read(offset, length)` gives bytes of the file; each text is the one the
    report carries with the text in (report.message_text)."""

    def __init__(self, messages: list[SipMessage]) -> None:
        self._frames = array("q", (message.frame for message in messages))
        self._offsets = array("q", (message.source[0] if message.source else -1 for message in messages))
        self._lengths = array("q", (message.source[1] if message.source else 0 for message in messages))
        self._kept = {position: message.raw for position, message in enumerate(messages) if message.source is None}

    def message_text(self, frame: int, read: Callable[[int, int], bytes], index: int = 0) -> str | None:
        """The text of the index-th message of this frame; None: no such message."""
        position = bisect.bisect_left(self._frames, frame) + index
        if position >= len(self._frames) or self._frames[position] != frame:
            return None
        return next(self.texts([position], read))[1]

    def texts(self, positions: Iterable[int], read: Callable[[int, int], bytes]) -> Iterator[tuple[int, str]]:
        """(position, text) of the messages at these positions, in no particular
        order: the kept bytes first, then the file's in file order, several
        messages to a read of at most READ_SPAN bytes (a search reads them all)."""
        from .report import message_text

        located = []
        for position in positions:
            if position in self._kept:
                yield position, message_text(self._kept[position])
            else:
                located.append((self._offsets[position], self._lengths[position], position))
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
        """text(row): the text of a row of `rows`, the `sip_messages` list of the
        report these messages made (what the ladders read an SDP message's media from)."""

        def text(row: dict) -> str | None:
            first = bisect.bisect_left(rows, row["frame"], key=itemgetter("frame"))
            position = next((k for k in range(first, len(rows)) if rows[k] is row), None)
            return None if position is None else next(self.texts([position], read))[1]

        return text


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


__all__ = ["CaptureAnalysis", "CaptureError", "MessageTexts", "analysis_of", "analyze_path", "file_reader", "result_for_path"]
