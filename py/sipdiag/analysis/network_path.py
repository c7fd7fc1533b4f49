"""What the capture shows about the network path toward SIP servers.

ICMP errors quoting SIP, TCP connects that never complete and TLS-only
signalling explain a REGISTER (or INVITE) that got no answer. They are
reported once here; `registration_findings` asks `path_clues` for the ones that concern
a given server so its "no response" finding can cite them too.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

from ..model import CaptureResult, IcmpError, TcpConnection, TlsConnection, hostport
from ..protocols.dns import RCODE_NAMES
from ..protocols.tls import SIP_TLS_PORT
from .derived import once
from .findings import Finding, counted

SIP_PORTS = {5060, SIP_TLS_PORT}

_ICMP_MEANING = {
    "port unreachable": (
        "the host is up but nothing listens on that port for that transport: the SIP "
        "service is down, listens on another port, or accepts only another transport"
    ),
    "host unreachable": "a router could not deliver to that host: it is down or the route to it is broken",
    "network unreachable": "a router has no route to that network",
}
_ICMP_FIREWALL_HINT = "a firewall or router policy refused the packet (administratively prohibited)"

# Addresses nobody outside the local network can send to: seen in Contact, Via
# or SDP while packets come from elsewhere, they point at NAT.
_UNROUTABLE = [
    (ipaddress.ip_network(net), kind)
    for net, kind in (
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
        ("169.254.0.0/16", "link-local"),
        ("fc00::/7", "unique local IPv6"),
        ("fe80::/10", "link-local IPv6"),
    )
]


@functools.lru_cache(maxsize=4096)  # asked for every message's addresses, which recur
def unroutable_kind(address: str | None) -> str | None:
    """'private (RFC 1918)' for 192.168.1.10 (brackets allowed); None for a routable address or a name."""
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return None
    return next((kind for network, kind in _UNROUTABLE if network.version == ip.version and ip in network), None)


@dataclass
class PathClue:
    """One observation about the path to a server, with its evidence frames."""

    kind: str  # "icmp" | "tcp" | "tls"
    text: str
    frames: list[int] = field(default_factory=list)


def analyze(result: CaptureResult) -> list[Finding]:
    return _icmp_findings(result) + _tcp_findings(result) + _tls_findings(result)


def path_clues(result: CaptureResult, server_ip: str, server_port: int) -> list[PathClue]:
    """Clues about why nothing came back from server_ip:server_port."""
    clues = []
    icmp = [e for e in _sip_icmp_errors(result) if (e.quoted_dst_ip, e.quoted_dst_port) == (server_ip, server_port)]
    if icmp:
        clues.append(PathClue("icmp", f"{icmp[0].reporter_ip} answered ICMP {icmp[0].description} ({len(icmp)}x)", [e.frame for e in icmp]))
    for connection in _failed_connects(result):
        if (connection.server_ip, connection.server_port) == (server_ip, server_port):
            clues.append(PathClue("tcp", _tcp_failure_text(connection), [connection.syn_frame] + _reset_frames(connection)))
    tls = [c for c in result.tls_connections if server_ip in (c.server_ip, c.client_ip)]
    if tls:
        clues.append(PathClue("tls", f"TLS connections with {server_ip} carry encrypted signalling", [c.first_frame for c in tls]))
    return clues


class _SipEnds:
    """Where the capture's SIP requests went and which addresses sent SIP: asked
    once per silent registration, so computed once (derived.once)."""

    def __init__(self, result: CaptureResult) -> None:
        self.destinations = {(m.dst_ip, m.dst_port) for m in result.sip_messages if m.is_request}
        self.source_ips = {m.src_ip for m in result.sip_messages}


def _sip_destinations(result: CaptureResult) -> set[tuple[str, int]]:
    return once(result, _SipEnds).destinations


def sent_sip(result: CaptureResult, ip: str) -> bool:
    """Whether any SIP message in the capture comes from this address."""
    return ip in once(result, _SipEnds).source_ips


def _sip_icmp_errors(result: CaptureResult) -> list[IcmpError]:
    """ICMP errors quoting a SIP packet, or a packet to where SIP was sent."""
    destinations = _sip_destinations(result)
    return [
        e
        for e in result.icmp_errors
        if e.quoted_sip or (e.quoted_dst_ip, e.quoted_dst_port) in destinations
    ]


def _icmp_findings(result: CaptureResult) -> list[Finding]:
    groups: dict[tuple, list[IcmpError]] = {}
    for error in _sip_icmp_errors(result):
        key = (error.quoted_protocol, error.quoted_dst_ip, error.quoted_dst_port, error.description)
        groups.setdefault(key, []).append(error)
    findings = []
    for (protocol, ip, port, description), errors in groups.items():
        target = hostport(ip, port) if ip and port is not None else (ip or "?")
        sent = [m.frame for m in result.sip_messages if (m.dst_ip, m.dst_port) == (ip, port)]
        meaning = _ICMP_MEANING.get(description, _ICMP_FIREWALL_HINT if "prohibited" in description else description)
        findings.append(
            Finding(
                code="ICMP_UNREACHABLE",
                condition="unreachable",
                subject={"kind": "destination", "destination": target},
                links={("destination", target)},
                summary=f"SIP to {target}/{protocol or '?'} answered by ICMP {description}",
                explanation=(
                    f"{errors[0].reporter_ip} sent back ICMP '{description}' {counted(len(errors), 'time')} for "
                    f"packets addressed to {target}. That means {meaning}. The SIP request never reached "
                    "a SIP application, so no SIP response can come."
                ),
                next_steps=[
                    f"Check that the SIP server at {target} is running and listening on {protocol or 'the used'} port {port}",
                    "Compare the configured registrar/proxy address, port and transport with what the server listens on",
                    "If the port is right, check host and network firewalls between the phone and the server",
                ],
                frames=[e.frame for e in errors] + sent,
                details={"target": target, "protocol": protocol, "icmp": description, "reporter": errors[0].reporter_ip},
            )
        )
    return findings


def _failed_connects(result: CaptureResult) -> list[TcpConnection]:
    """TCP connects toward SIP servers that never got established."""
    destinations = _sip_destinations(result)
    return [
        c
        for c in result.tcp_connections
        if not c.established and (c.server_port in SIP_PORTS or (c.server_ip, c.server_port) in destinations)
    ]


def _reset_frames(connection: TcpConnection) -> list[int]:
    return [connection.reset_frame] if connection.reset_frame is not None else []


def _tcp_failure_text(connection: TcpConnection) -> str:
    target = hostport(connection.server_ip, connection.server_port)
    if connection.reset_by == "server":
        return f"TCP connect to {target} refused (reset) by the server"
    return f"TCP connect to {target} never answered ({connection.syn_count} SYN)"


def _tcp_findings(result: CaptureResult) -> list[Finding]:
    findings = []
    for connection in _failed_connects(result):
        target = hostport(connection.server_ip, connection.server_port)
        refused = connection.reset_by == "server"
        findings.append(
            Finding(
                code="TCP_CONNECT_FAILED",
                condition="not_established",
                subject={"kind": "destination", "destination": target},
                summary=_tcp_failure_text(connection),
                explanation=(
                    f"The client {hostport(connection.client_ip, connection.client_port)} tried to open a TCP "
                    f"connection to {target}. "
                    + (
                        "The server answered with a reset: the host is reachable but nothing accepts TCP on that port."
                        if refused
                        else f"It sent {counted(connection.syn_count, 'SYN')} and nothing came back: a firewall drops the "
                        "packets, the address is wrong, or the host is down."
                    )
                    + " Without a connection no SIP message over TCP/TLS can be exchanged."
                ),
                next_steps=[
                    f"Check that the server listens on TCP port {connection.server_port}",
                    "Check firewalls between client and server for that port",
                    "If the server only offers UDP, configure the client for UDP (or vice versa)",
                ],
                frames=[connection.syn_frame] + _reset_frames(connection),
                details={"target": target, "syn_count": connection.syn_count, "reset_by": connection.reset_by},
            )
        )
    return findings


def _sip_tls_server(connection: TlsConnection) -> str | None:
    """The SIP end of a TLS connection, or None when it does not look like SIP.

    Without the handshake in the capture the engine can only guess who
    connected, so the SIPS port on either side marks the server.
    """
    if connection.client_port == SIP_TLS_PORT and connection.server_port != SIP_TLS_PORT:
        return hostport(connection.client_ip, connection.client_port)
    if connection.server_port == SIP_TLS_PORT or "sip" in (connection.sni or "").lower():
        return hostport(connection.server_ip, connection.server_port)
    return None


def _tls_findings(result: CaptureResult) -> list[Finding]:
    connections = [c for c in result.tls_connections if _sip_tls_server(c)]
    if not connections:
        return []
    servers = sorted({_sip_tls_server(c) for c in connections})
    only_tls = not result.sip_messages
    names = sorted({c.sni for c in connections if c.sni})
    return [
        Finding(
            code="TLS_SIGNALING",
            condition="tls_only" if only_tls else "tls_beside_plain",
            summary=f"SIP over TLS to {', '.join(servers)}: contents cannot be inspected",
            explanation=(
                f"{counted(len(connections), 'TLS connection')} carry signalling"
                + (f" (server name {', '.join(names)})" if names else "")
                + ". The SIP messages inside are encrypted, so registrations and calls on them cannot be "
                "analysed from this capture."
                + (" No plain-text SIP was seen at all." if only_tls else "")
            ),
            next_steps=[
                "Capture on the SIP server or phone with TLS key logging, or temporarily switch the test to UDP/TCP",
                "If TLS connections start but no registration happens, check the server certificate (expiry, name, chain)",
            ],
            frames=[c.first_frame for c in connections],
            details={"servers": servers, "server_names": names, "connections": len(connections)},
        )
    ]


def events(result: CaptureResult, dns_rows: list[dict]) -> list[dict]:
    """The report's `network_events`: the packets path findings cite that no
    other table shows, so each evidence frame has a row to open: every ICMP
    error, TCP connection attempt, TLS connection, and DNS message no query
    row holds (an answer whose query came before the capture started). In
    frame order; `frames` are the frames a row stands for."""
    rows = []
    for error in result.icmp_errors:
        quoted = _quoted_address(error.quoted_dst_ip, error.quoted_dst_port)
        rows.append(_event("icmp", [error.frame], error.time, error.reporter_ip,
                           _quoted_address(error.quoted_src_ip, error.quoted_src_port),
                           f"ICMP {error.description} for {error.quoted_protocol or '?'} to {quoted}"
                           + (" (quotes SIP)" if error.quoted_sip else "")))
    for connection in result.tcp_connections:
        rows.append(_event("tcp", [connection.syn_frame] + _reset_frames(connection), None,
                           hostport(connection.client_ip, connection.client_port),
                           hostport(connection.server_ip, connection.server_port),
                           _tcp_event_text(connection)))
    for connection in result.tls_connections:
        rows.append(_event("tls", [connection.first_frame], None,
                           hostport(connection.client_ip, connection.client_port),
                           hostport(connection.server_ip, connection.server_port),
                           f"TLS connection, {counted(connection.packets, 'packet')}"
                           + (f", server name {connection.sni}" if connection.sni else "")))
    shown = {frame for row in dns_rows for frame in (row["frame"], row.get("response_frame")) if frame}
    for message in result.dns_messages:
        if message.frame in shown:
            continue
        rcode = RCODE_NAMES.get(message.rcode, f"RCODE{message.rcode}")
        what = f"answer {rcode} (its query is not in the capture)" if message.is_response else "query"
        rows.append(_event("dns", [message.frame], message.time, hostport(message.src_ip, message.src_port),
                           hostport(message.dst_ip, message.dst_port),
                           f"DNS {message.qtype or '?'} {message.qname or '?'}: {what}"))
    return sorted(rows, key=lambda row: row["frame"])


def _event(kind: str, frames: list[int], time: float | None, src: str, dst: str, text: str) -> dict:
    return {"kind": kind, "frame": frames[0], "frames": frames, "time": time, "src": src, "dst": dst, "text": text}


def _quoted_address(ip: str | None, port: int | None) -> str:
    """The quoted packet's address, as much of it as the ICMP error kept."""
    if ip and port is not None:
        return hostport(ip, port)
    return ip or "?"


def _tcp_event_text(connection: TcpConnection) -> str:
    if not connection.established:
        return _tcp_failure_text(connection)
    return "TCP connection established" + (f", reset by the {connection.reset_by}" if connection.reset_frame else "")
