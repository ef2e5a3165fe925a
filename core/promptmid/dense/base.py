"""The dense-feature interface: an image in, a (C, h, w) float map at a known stride out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..descriptors.base import PreparedImage


@dataclass
class DenseMap:
    """Dense features of one image.

    ``features`` is (C, h, w) float32; cell j covers image pixels [stride*j, stride*j + stride), so image
    pixel x sits at cell coordinate (x + 0.5) / stride - 0.5. ``valid`` (h, w) marks cells with data.
    ``orientation_period`` > 0 says the channels are ``n_orientations`` equally spaced orientation bins
    over that many degrees (repeated per scale), so a rotation of the image cyclically shifts them; the
    search uses it to compensate the channels of a rotated map. 0 = no such structure (free learned maps).
    """

    features: torch.Tensor
    valid: torch.Tensor
    stride: int = 1
    n_orientations: int = 0
    orientation_period: float = 0.0
    learned: bool = False  # from a network: smoother, higher-valued correlation peaks than handcrafted maps

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.features.shape[1]), int(self.features.shape[2])


@runtime_checkable
class DenseFeaturizer(Protocol):
    """Anything that turns a prepared image into a :class:`DenseMap` whose SAR and optical maps compare
    by correlation (same channels, same meaning in both modalities)."""

    name: str

    def dense_map(self, image: PreparedImage) -> DenseMap: ...


def rotate_channels(f: torch.Tensor, rotations: list[float], n_orient: int, period: float) -> torch.Tensor:
    """Orientation-bin maps of an image rotated by ``rot`` degrees: bin j of the result holds the structure
    at orientation theta_j - rot of the source, a cyclic shift by rot / bin width (linear interpolation)."""
    b, c, h, w = f.shape
    mix = torch.zeros(b, n_orient, n_orient)
    width = period / n_orient
    for i, rot in enumerate(rotations):
        shift = rot / width
        lo = math.floor(shift)
        frac = shift - lo
        for j in range(n_orient):  # out bin j <- in bins j - lo and j - lo - 1
            mix[i, j, (j - lo) % n_orient] += 1 - frac
            mix[i, j, (j - lo - 1) % n_orient] += frac
    g = f.reshape(b, c // n_orient, n_orient, h * w)
    return torch.einsum("bji,bgin->bgjn", mix, g).reshape(b, c, h, w)
