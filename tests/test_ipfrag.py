"""IP fragment reassembly: any arrival order, the completing frame, bounded memory."""

from __future__ import annotations

import itertools
import struct

import pytest
from packet_builders import INVITE, addr, ethernet, ipv4, ipv6, udp
from sipdiag.capture.ipfrag import MAX_AGE_SECONDS, FragmentReassembler
from test_packets import decode

DATAGRAM = udp(INVITE)  # 8-byte UDP header + INVITE, fragmented in 8-byte units below


def v4_fragments(size: int = 128) -> list[bytes]:
    pieces = [DATAGRAM[start : start + size] for start in range(0, len(DATAGRAM), size)]
    return [
        ethernet(ipv4(piece, ident=77, fragment=(0x2000 if index < len(pieces) - 1 else 0) | (index * size // 8)))
        for index, piece in enumerate(pieces)
    ]


def v6_fragments(size: int = 128) -> list[bytes]:
    pieces = [DATAGRAM[start : start + size] for start in range(0, len(DATAGRAM), size)]
    return [
        ethernet(ipv6(struct.pack("!BBHI", 17, 0, (index * size) | (index < len(pieces) - 1), 0xABCD) + piece,
                      next_header=44), 0x86DD)
        for index, piece in enumerate(pieces)
    ]


@pytest.mark.parametrize("build", [v4_fragments, v6_fragments])
def test_every_arrival_order_gives_one_message_at_the_completing_frame(build):
    fragments = build()
    assert len(fragments) == 3
    for order in itertools.permutations(range(3)):
        result, decoder, _ = decode(*[(1, fragments[i]) for i in order])
        assert [(m.frame, m.method, m.raw) for m in result.sip_messages] == [(3, "INVITE", INVITE)]
        assert decoder.warnings() == []


def test_duplicate_fragments_do_not_disturb_reassembly():
    first, middle, last = v4_fragments()
    result, _, _ = decode((1, first), (1, first), (1, middle), (1, last), (1, last))
    assert [(m.frame, m.raw) for m in result.sip_messages] == [(4, INVITE)]


def test_fragments_of_different_datagrams_are_kept_apart():
    reassembler = FragmentReassembler()
    key_a, key_b = (4, addr("10.0.0.1"), addr("10.0.0.2"), 17, 1), (4, addr("10.0.0.1"), addr("10.0.0.2"), 17, 2)
    assert reassembler.add(key_a, 0, True, b"A" * 8, 1, 0.0) is None
    assert reassembler.add(key_b, 0, True, b"B" * 8, 2, 0.0) is None
    assert reassembler.add(key_b, 8, False, b"b", 3, 0.0) == b"B" * 8 + b"b"
    assert reassembler.add(key_a, 8, False, b"a", 4, 0.0) == b"A" * 8 + b"a"


def test_stale_incomplete_datagrams_are_dropped_with_a_warning():
    reassembler = FragmentReassembler()
    reassembler.add(("lost",), 0, True, b"x" * 8, 5, 100.0)
    reassembler.add(("other",), 0, True, b"y" * 8, 9, 100.0 + MAX_AGE_SECONDS + 1)
    # The late last fragment of the dropped datagram cannot complete it any more.
    assert reassembler.add(("lost",), 8, False, b"z", 10, 100.0 + MAX_AGE_SECONDS + 2) is None
    assert reassembler.dropped_frames == [5]
    assert reassembler.warnings() == ["3 fragmented IP datagrams never completed (first fragments in frames 5, 9, 10)"]


def test_real_fragmented_ipv6_capture(shared_captures):
    """The INVITEs tshark reports as reassembled from fragments are ours too, at the same frames."""
    import json

    from sipdiag.engine import result_for_path

    truth = json.loads((shared_captures / "tshark" / "sngrep__ipv6frag.pcap.json").read_text())["sip"]["message_list"]
    fragmented_frames = {m["frame"] for m in truth if m["ip_fragmented"]}
    result = result_for_path(str(shared_captures / "sngrep__ipv6frag.pcap"))
    ours = {m.frame: m for m in result.sip_messages}
    assert len(fragmented_frames) == 2
    for frame in fragmented_frames:
        message = ours[frame]
        # One fragment's payload cannot hold it: it really was reassembled.
        assert message.method == "INVITE" and len(message.raw) > 1280 - 48
    assert result.capture.warnings == []
