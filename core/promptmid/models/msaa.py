"""Multi-Scale Aware Aggregation: per-scale 1x1 heads, upsampling, softmax-weighted sum.

Geometry: a map of stride s has ceil(H/s) x ceil(W/s) cells, cell (i, j) covering input pixels
[s*i, s*i + s). It is upsampled by exactly s / out_stride (bilinear, align_corners=False keeps cell
centres in place) and cropped to the output grid, so every scale stays pixel-aligned.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def to_grid(f: torch.Tensor, stride: float, out_stride: int, size: tuple[int, int]) -> torch.Tensor:
    """Resample a stride-``stride`` map onto the stride-``out_stride`` grid of ``size`` cells."""
    factor = stride / out_stride
    if factor != 1:
        f = F.interpolate(f, scale_factor=factor, mode="bilinear", align_corners=False)
    h, w = size
    ph, pw = max(0, h - f.shape[2]), max(0, w - f.shape[3])
    if ph or pw:
        f = F.pad(f, (0, pw, 0, ph), mode="replicate")
    return f[:, :, :h, :w]


class MSAA(nn.Module):
    def __init__(self, in_channels: Sequence[int], strides: Sequence[float], out_channels: int, out_stride: int,
                 init_logits: Sequence[float] | None = None) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.strides, self.out_stride = list(strides), out_stride
        init = torch.tensor(list(init_logits), dtype=torch.float32) if init_logits is not None else torch.zeros(len(in_channels))
        self.scale_logits = nn.Parameter(init)  # equal weights at start unless told otherwise

    @property
    def scale_weights(self) -> torch.Tensor:
        return torch.softmax(self.scale_logits, dim=0)

    def forward(self, feats: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        w = self.scale_weights
        out = 0
        for i, (head, f, s) in enumerate(zip(self.heads, feats, self.strides)):
            out = out + w[i] * to_grid(head(f), s, self.out_stride, size)
        return out


class MeanAggregation(MSAA):
    """The "no F" ablation: the same heads and resampling, fixed equal weights."""

    def __init__(self, in_channels: Sequence[int], strides: Sequence[float], out_channels: int, out_stride: int,
                 init_logits: Sequence[float] | None = None) -> None:
        super().__init__(in_channels, strides, out_channels, out_stride)
        self.scale_logits.requires_grad_(False)
