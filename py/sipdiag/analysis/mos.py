"""A listening-quality estimate (MOS) from what a capture shows of one RTP stream.

This is the ITU-T G.107 E-model reduced to the inputs a capture has: codec,
packet loss and jitter. The one-way delay is not visible in a one-point
capture, so it is approximated from the codec frame and a jitter buffer of
twice the measured jitter. The result is an estimate for ranking calls, not a
measurement, and the report says so.
"""

from __future__ import annotations

# G.113 Appendix I equipment impairment Ie and packet-loss robustness Bpl
# (narrowband values; wideband codecs are scored on the same scale).
_CODEC_IMPAIRMENT = {
    "PCMU": (0.0, 25.1),
    "PCMA": (0.0, 25.1),
    "G722": (0.0, 25.1),
    "G729": (11.0, 19.0),
    "GSM": (20.0, 10.0),
    "ILBC": (11.0, 32.0),
    "OPUS": (0.0, 30.0),
    "SPEEX": (11.0, 19.0),
}
_UNKNOWN_CODEC = (11.0, 19.0)
# G.107 default basic signal-to-noise ratio Ro minus the default Is (R = 93.2).
_R_DEFAULT = 93.2
_FRAME_MS = 20.0


def _delay_impairment(delay_ms: float) -> float:
    """G.107 Id for the one-way delay (simplified form, echo well controlled)."""
    impairment = 0.024 * delay_ms
    if delay_ms > 177.3:
        impairment += 0.11 * (delay_ms - 177.3)
    return impairment


def r_factor(codec: str | None, loss_percent: float, jitter_ms: float) -> float:
    ie, bpl = _CODEC_IMPAIRMENT.get((codec or "").upper(), _UNKNOWN_CODEC)
    # Random loss (BurstR = 1): Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl)
    effective = ie + (95.0 - ie) * loss_percent / (loss_percent + bpl)
    delay_ms = _FRAME_MS + 2.0 * jitter_ms
    return _R_DEFAULT - _delay_impairment(delay_ms) - effective


def mos_from_r(r: float) -> float:
    """G.107 Annex B conversion of R to a MOS between 1 and 4.5."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6


def estimate_mos(codec: str | None, expected: int, lost: int, jitter_ms: float) -> float:
    loss_percent = 100.0 * lost / expected if expected > 0 else 0.0
    return round(mos_from_r(r_factor(codec, loss_percent, jitter_ms)), 2)
