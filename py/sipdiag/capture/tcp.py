"""TCP: per-direction stream reassembly and connection tracking.

Segments are put back in sequence order (out-of-order segments wait,
retransmitted bytes are dropped) and handed to a per-direction handler,
together with the frame that delivered them: a message completed by a segment
that filled a gap belongs to that segment's frame. At the end of the capture,
segments still waiting behind a hole come out after a gap, and every stream
hears that it ended, so a message left open is not lost. Connection attempts become
`TcpConnection` records so "no answer over TCP" can be diagnosed.
"""

from __future__ import annotations

from typing import Callable, Protocol

from ..model import TcpConnection, TlsConnection

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
_SEQ_MASK = 0xFFFFFFFF
_HALF = 1 << 31
# A segment lost before the capture point never arrives: after this many
# segments waiting behind the hole, the hole is skipped.
MAX_WAITING_SEGMENTS = 64
# Flows remembered at once; the oldest is forgotten beyond this (port scans,
# huge captures) so memory stays bounded.
MAX_FLOWS = 200_000
MAX_CONNECTION_RECORDS = 100_000


class StreamHandler(Protocol):
    def data(self, frame: int, time: float, chunk: bytes) -> bool:
        """Consume in-order bytes; False when the rest of the stream is of no interest."""

    def gap(self) -> None:
        """Bytes are missing before the next `data` call (never captured)."""

    def end(self) -> None:
        """No more bytes will come: the capture is over, or the flow is forgotten."""


def _seq_delta(seq: int, base: int) -> int:
    """seq - base in sequence space (RFC 793 modular arithmetic)."""
    delta = (seq - base) & _SEQ_MASK
    return delta - (1 << 32) if delta >= _HALF else delta


class TcpDirection:
    """In-order delivery of one direction's payload bytes."""

    __slots__ = ("next_seq", "waiting", "handler", "active")

    def __init__(self, handler: StreamHandler | None) -> None:
        self.next_seq: int | None = None
        # seq -> (payload, frame, time) of segments ahead of a hole
        self.waiting: dict[int, tuple[bytes, int, float]] = {}
        self.handler = handler
        self.active = handler is not None

    def syn(self, seq: int) -> None:
        self.next_seq = (seq + 1) & _SEQ_MASK
        self.waiting.clear()

    def segment(self, frame: int, time: float, seq: int, payload: bytes) -> None:
        if self.next_seq is None:  # joined mid-stream: start where the capture starts
            self.next_seq = seq
        delta = _seq_delta(seq, self.next_seq)
        if delta > 0:
            if seq not in self.waiting or len(payload) > len(self.waiting[seq][0]):
                self.waiting[seq] = (payload, frame, time)
            if len(self.waiting) > MAX_WAITING_SEGMENTS:
                self._skip_hole(frame, time)
            return
        self._deliver(frame, time, payload, -delta)
        if self.waiting:
            self._drain(frame, time)

    def end(self) -> None:
        """No more segments: those still waiting behind a hole come out after a gap, then the stream ends."""
        while self.waiting and self.active:
            self._skip_hole(None, None)
        if self.active:
            self.handler.end()

    def _deliver(self, frame: int, time: float, payload: bytes, already_seen: int) -> None:
        if already_seen >= len(payload):
            return  # retransmission of bytes already delivered
        if already_seen:
            payload = payload[already_seen:]
        self.next_seq = (self.next_seq + len(payload)) & _SEQ_MASK
        if self.active and not self.handler.data(frame, time, payload):
            self.active = False
            self.waiting.clear()

    def _drain(self, frame: int | None, time: float | None) -> None:
        """Deliver what the hole's end made ready: as the segment `frame` that filled it
        brought them, or (None, at the end of the capture) each as its own frame did."""
        waiting = self.waiting
        while waiting:
            ready = [seq for seq in waiting if _seq_delta(seq, self.next_seq) <= 0]
            if not ready:
                return
            for seq in ready:
                payload, at_frame, at_time = waiting.pop(seq)
                if frame is not None:
                    at_frame, at_time = frame, time
                self._deliver(at_frame, at_time, payload, -_seq_delta(seq, self.next_seq))

    def _skip_hole(self, frame: int | None, time: float | None) -> None:
        self.next_seq = min(self.waiting, key=lambda seq: _seq_delta(seq, self.next_seq))
        if self.active:
            self.handler.gap()
        self._drain(frame, time)


class TcpFlow:
    """Both directions of one connection (or of one 4-tuple seen mid-stream)."""

    __slots__ = ("client_key", "directions", "record", "tls", "client_isn")

    def __init__(self, client_key: tuple) -> None:
        self.client_key = client_key  # the side that sent the SYN, else the first seen
        self.directions: dict[tuple, TcpDirection] = {}
        self.record: TcpConnection | None = None
        self.tls: TlsConnection | None = None
        self.client_isn: int | None = None


HandlerFactory = Callable[[TcpFlow, tuple], "StreamHandler | None"]


class TcpTracker:
    """Routes TCP segments to flows; `make_handler(flow, key)` decides what each direction is worth."""

    def __init__(self, make_handler: HandlerFactory, address_text: Callable[[bytes], str]) -> None:
        self._make_handler = make_handler
        self._text = address_text
        self._flows: dict[tuple, TcpFlow] = {}
        self.connections: list[TcpConnection] = []
        self.untracked_connections = 0

    def segment(self, frame: int, time: float, src: bytes, sport: int, dst: bytes, dport: int,
                seq: int, flags: int, payload: bytes) -> None:
        key = (src, sport, dst, dport)
        flow = self._flows.get(key)
        if flow is None or (flags & (SYN | ACK) == SYN and flow.client_isn not in (None, seq)):
            flow = self._new_flow(key)
        if flow.tls is not None:
            flow.tls.packets += 1
        direction = flow.directions.get(key)
        if direction is None:
            direction = flow.directions[key] = TcpDirection(self._make_handler(flow, key))
        if flags & SYN:
            self._syn(frame, flow, key, seq, flags)
            direction.syn(seq)
        if flags & RST and flow.record is not None and flow.record.reset_frame is None:
            flow.record.reset_frame = frame
            flow.record.reset_by = "client" if key == flow.client_key else "server"
        if payload:
            direction.segment(frame, time, seq, payload)

    def close(self) -> None:
        """End of the capture: every stream hears that no more bytes come."""
        for flow in {id(each): each for each in self._flows.values()}.values():
            _end(flow)

    def _new_flow(self, key: tuple) -> TcpFlow:
        flows = self._flows
        replaced = flows.get(key)
        if replaced is not None:  # a new connection on the same ports: the old one's streams end
            _end(replaced)
        elif len(flows) >= MAX_FLOWS:
            # Both keys go, so the forgotten flow's streams end once, here.
            src, sport, dst, dport = oldest = next(iter(flows))
            forgotten = flows.pop(oldest)
            if flows.get((dst, dport, src, sport)) is forgotten:
                del flows[(dst, dport, src, sport)]
            _end(forgotten)
        flow = TcpFlow(key)
        src, sport, dst, dport = key
        flows[key] = flows[(dst, dport, src, sport)] = flow
        return flow

    def _syn(self, frame: int, flow: TcpFlow, key: tuple, seq: int, flags: int) -> None:
        if flags & ACK:  # SYN-ACK: the server answered
            if flow.record is not None and key != flow.client_key:
                flow.record.established = True
            return
        if flow.client_isn == seq and flow.record is not None:
            flow.record.syn_count += 1
            return
        flow.client_key = key
        flow.client_isn = seq
        if len(self.connections) >= MAX_CONNECTION_RECORDS:
            self.untracked_connections += 1
            return
        src, sport, dst, dport = key
        flow.record = TcpConnection(self._text(src), sport, self._text(dst), dport, syn_frame=frame)
        self.connections.append(flow.record)


def _end(flow: TcpFlow) -> None:
    for direction in flow.directions.values():
        direction.end()
