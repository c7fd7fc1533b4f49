"""TLS: ClientHello recognition and SNI; connections recorded, never read."""

from __future__ import annotations

import struct

import pytest
from packet_builders import ethernet, ipv4, tcp
from sipdiag.protocols.tls import client_hello_sni
from test_packets import decode


def client_hello(server_name: bytes | None) -> bytes:
    extensions = b""
    if server_name is not None:
        entry = b"\x00" + struct.pack("!H", len(server_name)) + server_name
        sni = struct.pack("!H", len(entry)) + entry
        extensions += struct.pack("!HH", 0, len(sni)) + sni
    extensions = struct.pack("!HH", 0x000B, 2) + b"\x01\x00" + extensions  # ec_point_formats first
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + struct.pack("!H", len(extensions)) + extensions
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def test_sni_is_read():
    assert client_hello_sni(client_hello(b"sip.example.com")) == (True, "sip.example.com")
    assert client_hello_sni(client_hello(None)) == (True, None)
    assert client_hello_sni(b"\x17\x03\x03\x00\x10" + bytes(16)) == (False, None)


@pytest.mark.parametrize("cut", range(9, 60, 5))
def test_cut_hello_is_still_a_hello(cut: int):
    assert client_hello_sni(client_hello(b"sip.example.com")[:cut]) == (True, None)


def test_client_hello_across_segments_opens_one_connection():
    hello = client_hello(b"pbx.example.net")
    packets = [(1, ethernet(ipv4(tcp(b"", 99, 0x02, 40000, 5061), protocol=6)))]
    packets += [(1, ethernet(ipv4(tcp(hello[i : i + 10], 100 + i, 0x18, 40000, 5061), protocol=6)))
                for i in range(0, len(hello), 10)]
    packets.append((1, ethernet(ipv4(tcp(b"\x17\x03\x03\x00\x01x", 1, 0x18, 5061, 40000), protocol=6,
                                     src="10.0.0.2", dst="10.0.0.1"))))
    result, _, _ = decode(*packets)
    [connection] = result.tls_connections
    assert (connection.client_ip, connection.client_port, connection.server_ip, connection.server_port) == (
        "10.0.0.1", 40000, "10.0.0.2", 5061)
    assert (connection.sni, connection.first_frame, connection.packets) == ("pbx.example.net", len(packets) - 1, 2)
    assert result.sip_messages == []


def test_real_capture_joined_mid_connection(shared_captures):
    from sipdiag.engine import result_for_path

    result = result_for_path(str(shared_captures / "sngrep__tlssaved.pcap"))
    assert result.sip_messages == []
    assert {(c.client_ip, c.server_ip, c.server_port, c.sni) for c in result.tls_connections} == {
        ("10.10.1.142", "10.10.9.40", 5061, None), ("10.10.1.158", "10.10.9.40", 5061, None)}
