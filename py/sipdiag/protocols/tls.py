"""TLS ClientHello recognition and the SNI server name (RFC 8446 4.1.2, RFC 6066 3).

SIP over TLS cannot be read, but the connection and the server name the
client asked for are evidence worth reporting.
"""

from __future__ import annotations

HANDSHAKE = 0x16
# change_cipher_spec, alert, handshake, application_data (RFC 8446 B.1): a
# capture that starts mid-connection shows application data first.
RECORD_TYPES = range(20, 24)
CLIENT_HELLO = 1
SERVER_NAME_EXTENSION = 0
HOST_NAME = 0
RECORD_HEADER = 5
SIP_TLS_PORT = 5061  # RFC 3261 26.3.1


def starts_tls_record(data: bytes) -> bool:
    """A TLS record header: a known content type, protocol version 3.0 to 3.4."""
    return len(data) >= 3 and data[0] in RECORD_TYPES and data[1] == 3 and data[2] <= 4


def record_length(data: bytes) -> int | None:
    """Bytes needed for the first record (header included), None before the header is in."""
    if len(data) < RECORD_HEADER:
        return None
    return RECORD_HEADER + ((data[3] << 8) | data[4])


def client_hello_sni(record: bytes) -> tuple[bool, str | None]:
    """(is a ClientHello, SNI host name or None) for the first TLS record."""
    if (not starts_tls_record(record) or record[0] != HANDSHAKE or len(record) < RECORD_HEADER + 4
            or record[RECORD_HEADER] != CLIENT_HELLO):
        return False, None
    try:
        return True, _server_name(record, RECORD_HEADER + 4)
    except IndexError:
        return True, None  # a cut-off hello is still a hello


def _server_name(data: bytes, offset: int) -> str | None:
    offset += 2 + 32  # legacy_version, random
    offset += 1 + data[offset]  # session id
    offset += 2 + ((data[offset] << 8) | data[offset + 1])  # cipher suites
    offset += 1 + data[offset]  # compression methods
    end = min(len(data), offset + 2 + ((data[offset] << 8) | data[offset + 1]))
    offset += 2
    while offset + 4 <= end:
        ext_type = (data[offset] << 8) | data[offset + 1]
        ext_len = (data[offset + 2] << 8) | data[offset + 3]
        offset += 4
        if ext_type == SERVER_NAME_EXTENSION:
            return _host_name(data[offset : offset + ext_len])
        offset += ext_len
    return None


def _host_name(extension: bytes) -> str | None:
    offset = 2  # server_name_list length
    while offset + 3 <= len(extension):
        name_type = extension[offset]
        length = (extension[offset + 1] << 8) | extension[offset + 2]
        name = extension[offset + 3 : offset + 3 + length]
        if name_type == HOST_NAME and len(name) == length:
            return name.decode("ascii", "replace")
        offset += 3 + length
    return None
