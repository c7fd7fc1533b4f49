"""Media follows the SDP in force.

Every SDP body of a dialog is an *announcement* by one side (caller or
callee): the initial offer and its answer, early media (183), re-INVITE,
UPDATE and PRACK offers and answers, a late offer's ACK. An announcement
stays in force until the same side announces again or the dialog ends, so a
re-INVITE that points the media elsewhere (a PBX handing the call over to
direct media), puts it on hold (a=sendonly/inactive, c=0.0.0.0, port 0) or
moves it to another port changes where RTP is expected from that moment on.
An in-dialog offer the other side refused (a final response >= 300) changes
nothing, as RFC 3264 section 8 says.

A stream belongs to a dialog when an announcement in force while the stream
flowed names one of its ends; several dialogs can own one stream (the legs a
B2BUA joins with direct media all point at the same two phones). Which
directions a dialog should carry at each moment follows from both sides'
announcements, so a call on hold or sent elsewhere is not "missing" media.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field
from itertools import pairwise

from ..model import RtpStream, SdpMedia, SessionDescription, SipMessage

CALLER, CALLEE = "caller", "callee"
CALLER_TO_CALLEE, CALLEE_TO_CALLER = "caller_to_callee", "callee_to_caller"
_SENDS = frozenset({"sendrecv", "sendonly"})
_RECEIVES = frozenset({"sendrecv", "recvonly"})


def media_address(description: SessionDescription, media: SdpMedia) -> str | None:
    return media.connection or description.connection


def media_direction(description: SessionDescription, media: SdpMedia) -> str:
    return media.direction or description.direction or "sendrecv"


@functools.lru_cache(maxsize=4096)  # a call's few addresses recur in every SDP: parse each once
def _endpoint_ip(address: str) -> str | None:
    """The address as the capture writes it (IPv6 compressed, lower case);
    None for the unspecified address, RFC 2543's way of saying "hold"."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a host name: it can name no stream, but it is no hold either
    return None if ip.is_unspecified else str(ip)


@dataclass
class Announcement:
    """What one side's SDP said, from `time` until `until`.

    The copies of one SDP that a proxy forwards hop by hop (same side, same
    request or response, same CSeq) are one announcement: each hop's copy
    may name its own address (a media relay rewrites them), all in force.
    """

    side: str
    frame: int
    time: float
    until: float = 0.0
    # (ip, port) -> frame of the first copy that named it
    endpoints: dict[tuple[str, int], int] = field(default_factory=dict)
    sends: set[str] = field(default_factory=set)     # media kinds (audio, video) this side sends as RTP
    receives: set[str] = field(default_factory=set)  # media kinds it receives at a usable address

    def add(self, message: SipMessage) -> None:
        description = message.sdp
        for media in description.media:
            if not media.port:
                continue  # a refused or disabled stream (RFC 3264 section 6)
            address = media_address(description, media)
            ip = _endpoint_ip(address) if address else None
            direction = media_direction(description, media)
            rtp = "RTP" in media.protocol.upper()
            if ip is not None:
                self.endpoints.setdefault((ip, media.port), message.frame)
                if rtp and direction in _RECEIVES:
                    self.receives.add(media.media)
            if rtp and direction in _SENDS:
                self.sends.add(media.media)

    def overlaps(self, start: float, end: float) -> bool:
        return self.time <= end and start <= self.until


@dataclass(frozen=True)
class StreamMatch:
    """An RTP stream as one dialog sees it."""

    stream: RtpStream
    direction: str
    sdp_frame: int  # the SDP (frame) in force that named the stream's destination, else its source


@dataclass
class MediaTimeline:
    """Every announcement of one dialog, in time order, and when the dialog ended."""

    announcements: list[Announcement]
    end: float

    def endpoints(self) -> set[tuple[str, int]]:
        return {endpoint for announcement in self.announcements for endpoint in announcement.endpoints}

    def changes(self) -> list[float]:
        return sorted({a.time for a in self.announcements})

    def in_force(self, side: str, time: float) -> Announcement | None:
        current = None
        for announcement in self.announcements:
            if announcement.side == side and announcement.time <= time:
                current = announcement
        return current

    def expected(self, start: float, end: float) -> dict[str, list[tuple[float, float]]]:
        """For each direction, the intervals of [start, end] in which the
        sender's SDP in force says it sends a media kind that the receiver's
        SDP in force receives at a usable address."""
        intervals: dict[str, list[tuple[float, float]]] = {CALLER_TO_CALLEE: [], CALLEE_TO_CALLER: []}
        bounds = [start] + [t for t in self.changes() if start < t < end] + [end]
        for begin, finish in pairwise(bounds):
            caller, callee = self.in_force(CALLER, begin), self.in_force(CALLEE, begin)
            for direction, sender, receiver in ((CALLER_TO_CALLEE, caller, callee), (CALLEE_TO_CALLER, callee, caller)):
                if _flows(sender, receiver):
                    intervals[direction].append((begin, finish))
        return intervals


def _flows(sender: Announcement | None, receiver: Announcement | None) -> bool:
    """Whether media goes from one side to the other. A side whose SDP the
    capture lacks (an answer in a body not captured, a late offer's ACK not
    yet sent) is taken to accept what the other side announced."""
    if sender is None or receiver is None:
        known = sender or receiver
        return known is not None and bool(known.receives if sender is None else known.sends)
    return bool(sender.sends & receiver.receives)


def build_timeline(announced: list[tuple[SipMessage, str]], end: float) -> MediaTimeline:
    """`announced`: each SDP-carrying message in force (refused offers left
    out) with the side that sent it, in capture order; `end`: when the
    dialog ended (BYE, final failure, or the end of the capture)."""
    by_key: dict[tuple, Announcement] = {}
    for message, side in announced:
        key = (side, message.is_request, message.method, message.status, message.cseq, message.header("rseq"))
        announcement = by_key.get(key)
        if announcement is None:
            announcement = by_key[key] = Announcement(side, message.frame, message.time)
        announcement.add(message)
    announcements = sorted(by_key.values(), key=lambda a: (a.time, a.frame))
    for side in (CALLER, CALLEE):
        own = [a for a in announcements if a.side == side]
        for announcement, following in zip(own, own[1:] + [None]):
            announcement.until = following.time if following else max(end, announcement.time)
    return MediaTimeline(announcements, end)


def match_streams(timelines: list[MediaTimeline], streams: list[RtpStream]) -> list[list[StreamMatch]]:
    """For each timeline, the streams it owns: one whose destination (else
    source) an announcement names while the stream flows. Indexed by
    endpoint, so a capture with many calls and streams stays linear."""
    index: dict[tuple[str, int], list[tuple[int, Announcement]]] = {}
    for number, timeline in enumerate(timelines):
        for announcement in timeline.announcements:
            for endpoint in announcement.endpoints:
                index.setdefault(endpoint, []).append((number, announcement))
    owned: list[list[StreamMatch]] = [[] for _ in timelines]
    for stream in streams:
        best: dict[int, tuple[tuple, StreamMatch]] = {}
        latest: tuple | None = None
        for role, endpoint in ((0, (stream.dst_ip, stream.dst_port)), (1, (stream.src_ip, stream.src_port))):
            for number, announcement in index.get(endpoint, ()):
                if announcement.overlaps(stream.first_time, stream.last_time):
                    rank = (role, announcement.time)
                    if number not in best or rank < best[number][0]:
                        best[number] = (rank, _match(stream, announcement, endpoint, role))
                elif announcement.time <= stream.first_time:
                    candidate = (announcement.time, -role, number, announcement, endpoint, role)
                    latest = candidate if latest is None or candidate[:2] > latest[:2] else latest
        if not best and latest is not None:
            # No SDP in force names it: the stream began after its dialog
            # ended (a phone still sending after BYE or a failure, seen in
            # sngrep__aaa.pcap 1 s after a 480). It goes to the latest dialog
            # that named one of its ends before it began.
            _, _, number, announcement, endpoint, role = latest
            best[number] = ((role, announcement.time), _match(stream, announcement, endpoint, role))
        for number, (_, match) in best.items():
            owned[number].append(match)
    return owned


def _match(stream: RtpStream, announcement: Announcement, endpoint: tuple[str, int], role: int) -> StreamMatch:
    """`role` 0: the announcement names the stream's destination, 1: its
    source. Sent to a side's address goes toward that side; sent from it,
    away from it."""
    toward_callee = (announcement.side == CALLEE) == (role == 0)
    direction = CALLER_TO_CALLEE if toward_callee else CALLEE_TO_CALLER
    return StreamMatch(stream, direction, announcement.endpoints[endpoint])
