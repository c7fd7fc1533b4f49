"""Protocol messages from payload bytes: SIP, SDP, DNS, RTP/RTCP, WebSocket and
TLS parsers. Sans-I/O; they never raise on damaged input."""
