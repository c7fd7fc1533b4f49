"""A capture safe to share: keyed address and name replacement, packet, text
and WebSocket rewriting with checksums fixed, the fail-closed verification of
the written copy, and the evidence pack."""
