"""Damage for the fuzz tests: the ways real bytes get broken on the wire or on disk."""

from __future__ import annotations

from hypothesis import strategies as st


def damage(draw, data: bytes, replacements: list[int]) -> bytes:
    """One drawn change: a byte replaced or inserted, a run deleted, or the rest cut off."""
    data = bytearray(data)
    position = draw(st.integers(0, len(data)))
    action = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    byte = draw(st.sampled_from(replacements))
    if action == "replace" and position < len(data):
        data[position] = byte
    elif action == "insert":
        data.insert(position, byte)
    elif action == "delete":
        del data[position : position + draw(st.integers(1, 60))]
    else:
        del data[position:]
    return bytes(data)
