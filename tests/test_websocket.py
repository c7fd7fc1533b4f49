"""SIP over WebSocket (RFC 7118): handshake, masked frames, fragmentation."""

from __future__ import annotations

import struct

import pytest
from packet_builders import INVITE, OK_200
from sipdiag.protocols.websocket import WebSocketStream, unmask

UPGRADE = (b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Protocol: sip\r\n\r\n")
MASK = b"\x11\x22\x33\x44"


def frame(payload: bytes, opcode: int = 1, fin: bool = True, mask: bytes | None = MASK) -> bytes:
    length = len(payload)
    if length < 126:
        head = bytes((0x80 * fin | opcode, 0x80 * bool(mask) | length))
    else:
        head = bytes((0x80 * fin | opcode, 0x80 * bool(mask) | 126)) + struct.pack("!H", length)
    return head + (mask + unmask(payload, mask) if mask else payload)


STREAM = UPGRADE + frame(INVITE) + frame(b"", opcode=9) + frame(OK_200[:20], fin=False) + frame(OK_200[20:], opcode=0)


def test_unmask_is_rfc6455_xor():
    assert unmask(b"\x00\x00\x00\x00\x00", MASK) == b"\x11\x22\x33\x44\x11"


@pytest.mark.parametrize("step", [len(STREAM), 1, 13])
def test_messages_come_out_whole_whatever_the_chunking(step: int):
    stream = WebSocketStream()
    messages = []
    for start in range(0, len(STREAM), step):
        messages += stream.feed(STREAM[start : start + step])
    assert messages == [INVITE, OK_200]


def test_trailing_partial_frame_waits():
    stream = WebSocketStream()
    assert stream.feed(UPGRADE + frame(INVITE, mask=None) + frame(OK_200)[:30]) == [INVITE]


def test_plain_http_is_not_a_websocket():
    stream = WebSocketStream()
    assert stream.feed(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n" + frame(INVITE)) == []
    assert stream.upgraded is False


def test_real_capture_sip_over_websocket(shared_captures):
    from sipdiag.engine import result_for_path

    result = result_for_path(str(shared_captures / "heplify__sip_tcp_websocket.pcap"))
    transports = {m.transport for m in result.sip_messages}
    assert "ws" in transports
    assert all(m.call_id and m.cseq for m in result.sip_messages if m.transport == "ws")
