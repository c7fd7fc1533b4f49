"""IPv4 and IPv6 fragment reassembly.

Large INVITEs (many codecs, long Via/Record-Route lists) routinely exceed the
path MTU over UDP. The reassembled datagram belongs to the frame of the
fragment that completed it, as in Wireshark. Fragments of datagrams that never
complete are dropped once they are old or too many, so memory stays bounded.
"""

from __future__ import annotations

# Linux keeps fragments 30 s (net.ipv4.ipfrag_time); anything older in capture
# time is lost for good.
MAX_AGE_SECONDS = 30.0
MAX_PENDING_SETS = 1024
MAX_DATAGRAM = 65535 + 40  # IPv6 payload plus a margin: beyond it, fragments are damage


class _FragmentSet:
    __slots__ = ("first_frame", "first_time", "pieces", "total")

    def __init__(self, frame: int, time: float):
        self.first_frame = frame
        self.first_time = time
        self.pieces: dict[int, bytes] = {}
        self.total: int | None = None  # known once the last fragment (more=False) arrived


class FragmentReassembler:
    """Collects fragments per datagram key and returns the payload when complete.

    The key must identify one datagram: (src, dst, protocol, id) for IPv4
    (RFC 791), (src, dst, id) for IPv6 (RFC 8200 4.5).
    """

    def __init__(self) -> None:
        self._sets: dict[tuple, _FragmentSet] = {}
        self.dropped_frames: list[int] = []  # first frame of each abandoned datagram

    def add(self, key: tuple, offset: int, more: bool, payload: bytes, frame: int, time: float) -> bytes | None:
        self._expire(time)
        fragments = self._sets.get(key)
        if fragments is None:
            fragments = self._sets[key] = _FragmentSet(frame, time)
        end = offset + len(payload)
        if end > MAX_DATAGRAM:
            return None
        fragments.pieces[offset] = payload
        if not more:
            fragments.total = end
        if fragments.total is None or not _covers(fragments.pieces, fragments.total):
            return None
        del self._sets[key]
        datagram = bytearray(fragments.total)
        for start, piece in sorted(fragments.pieces.items()):
            # Overlapping retransmitted pieces: the later offset's bytes win,
            # which is what a receiving stack sees for identical copies.
            piece = piece[: fragments.total - start]
            datagram[start : start + len(piece)] = piece
        return bytes(datagram)

    def _expire(self, now: float) -> None:
        sets = self._sets
        # Insertion order is arrival order, so only the oldest needs checking.
        while sets:
            key, oldest = next(iter(sets.items()))
            if len(sets) <= MAX_PENDING_SETS and now - oldest.first_time <= MAX_AGE_SECONDS:
                return
            del sets[key]
            self.dropped_frames.append(oldest.first_frame)

    def warnings(self) -> list[str]:
        """Datagrams whose fragments never all arrived (call at end of input)."""
        frames = self.dropped_frames + [s.first_frame for s in self._sets.values()]
        if not frames:
            return []
        shown = ", ".join(str(f) for f in sorted(frames)[:10])
        more = " ..." if len(frames) > 10 else ""
        return [f"{len(frames)} fragmented IP datagrams never completed (first fragments in frames {shown}{more})"]


def _covers(pieces: dict[int, bytes], total: int) -> bool:
    reached = 0
    for start in sorted(pieces):
        if start > reached:
            return False
        reached = max(reached, start + len(pieces[start]))
    return reached >= total
