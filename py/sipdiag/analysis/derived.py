"""Values several analyses derive from one capture, computed once.

The calls (calls.py) are read by the call findings and by timing, the
registration sequences by the registration findings and by timing, where
SIP went by every silent registration's finding: each rebuilt them from all
messages, which made a large capture pay twice, or once per registration.
They are kept in `CaptureResult.derived`, so they live exactly as long as
the result; the message count is part of the key, so a result given more
messages (tests build them up) is read afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..model import CaptureResult

T = TypeVar("T")


def once(result: CaptureResult, compute: Callable[[CaptureResult], T]) -> T:
    """compute(result), computed on the first call for this result and its messages."""
    key = (compute.__module__, compute.__qualname__, len(result.sip_messages))
    cache = result.derived
    if key not in cache:
        cache[key] = compute(result)
    return cache[key]
