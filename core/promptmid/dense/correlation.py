"""Small helpers shared by the correlation-based stages (global search, template tie points)."""

from __future__ import annotations

import math

import numpy as np
import torch


def fft_len(n: int, even: bool = False) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT sizes); ``even`` for real FFTs that want an even length."""
    best = 1 << (n - 1).bit_length()
    p2 = 1
    while p2 < 2 * n:
        p3 = p2
        while p3 < 2 * n:
            p5 = p3
            while p5 < 2 * n:
                if n <= p5 < best and (not even or p5 % 2 == 0):
                    best = p5
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return best


def peak_offset(surface: np.ndarray, iy: int, ix: int) -> tuple[float, float]:
    """Sub-pixel offset (dy, dx) of the peak at (iy, ix) of a correlation surface: the vertex of a parabola
    through it and its two neighbours along each axis, clipped to +-0.5; 0 on an edge or a flat/non-finite
    neighbourhood."""

    def vertex(a: float, b: float, c: float) -> float:
        if not all(math.isfinite(v) for v in (a, b, c)):
            return 0.0
        den = a - 2 * b + c
        return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < -1e-12 else 0.0

    h, w = surface.shape
    dy = vertex(surface[iy - 1, ix], surface[iy, ix], surface[iy + 1, ix]) if 0 < iy < h - 1 else 0.0
    dx = vertex(surface[iy, ix - 1], surface[iy, ix], surface[iy, ix + 1]) if 0 < ix < w - 1 else 0.0
    return dy, dx


def centred(f: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(C, h, w) maps with each channel's mean over the valid cells removed, zero elsewhere: correlation then
    measures co-variation of structure, not the shared offset of magnitude-like channels."""
    v = valid.to(f.dtype)
    mean = (f * v).sum(dim=(1, 2), keepdim=True) / v.sum().clamp(min=1.0)
    return (f - mean) * v
