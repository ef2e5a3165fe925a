"""RIFT-style descriptor: histograms of the maximum-index map (MIM) of log-Gabor orientation amplitudes.

For each pixel the MIM stores which of the O filter orientations responds most strongly (summed over
scales). That index depends on local structure orientation, not on intensity, so SAR and optical agree
where they show the same edges. A keypoint's descriptor is the O-bin MIM histogram in each of
``cells x cells`` cells of a square patch (Li et al., RIFT, 2019), computed for thousands of keypoints
at once with one integral image per orientation. Not rotation-normalised: the evaluation protocol and
real co-registration involve small rotations (+-10 degrees), which the cell histograms absorb.
Needs no weights: it is the fallback engine and a benchmark peer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import PreparedImage, l2_normalize


@dataclass
class ClassicalConfig:
    patch_size: int = 48  # pixels of the work grid
    cells: int = 6  # patch split into cells x cells histograms
    mode: str = "mim"  # "mim": RIFT max-index votes; "energy": soft per-orientation amplitude shares
    amplitude_weighted: bool = True  # votes weighted by the winning amplitude (suppresses flat-area noise)
    root: bool = True  # Hellinger (square-root) normalisation, better for histogram comparison


class ClassicalDescriber:
    name = "classical"

    def __init__(self, cfg: ClassicalConfig | None = None) -> None:
        self.cfg = cfg or ClassicalConfig()

    def integrals(self, image: PreparedImage) -> np.ndarray:
        """(O, H+1, W+1) integral images of the orientation votes, computed once per image and setting."""
        c = self.cfg
        key = ("classical_integrals", c.mode, c.amplitude_weighted)
        if key not in image.cache:
            image.cache[key] = self._integrals(image)
        return image.cache[key]

    def _integrals(self, image: PreparedImage) -> np.ndarray:
        amp = image.pc.orient_amplitude  # (O, H, W)
        n_orient, h, w = amp.shape
        c = self.cfg
        mim = np.argmax(amp, axis=0)
        weight = amp.max(axis=0) if c.amplitude_weighted else np.ones((h, w), np.float32)
        if c.amplitude_weighted:
            weight = weight / (np.percentile(weight[image.valid], 99) + 1e-12) if image.valid.any() else weight
            weight = np.minimum(weight, 1.0)
        weight = np.where(image.valid, weight, 0.0)
        if c.mode == "energy":
            share = amp / (amp.sum(axis=0, keepdims=True) + 1e-12)
            votes = share * weight[None]
        else:
            votes = np.stack([np.where(mim == o, weight, 0.0) for o in range(n_orient)])
        integrals = np.zeros((n_orient, h + 1, w + 1), np.float64)
        integrals[:, 1:, 1:] = np.cumsum(np.cumsum(votes, 1), 2)
        return integrals

    def describe(self, image: PreparedImage, keypoints: np.ndarray) -> np.ndarray:
        n_orient, h, w = image.pc.orient_amplitude.shape
        c = self.cfg
        if len(keypoints) == 0:
            return np.zeros((0, c.cells * c.cells * n_orient), np.float32)
        integrals = self.integrals(image)
        edges = np.linspace(-c.patch_size / 2.0, c.patch_size / 2.0, c.cells + 1)
        # Cell boundaries in integral-image coordinates (pixel centres at integer + 0.5).
        xs = np.clip(np.rint(keypoints[:, :1] + 0.5 + edges[None, :]), 0, w).astype(int)  # (N, C+1)
        ys = np.clip(np.rint(keypoints[:, 1:2] + 0.5 + edges[None, :]), 0, h).astype(int)
        y0, y1 = ys[:, :-1, None], ys[:, 1:, None]  # (N, C, 1): rows index
        x0, x1 = xs[:, None, :-1], xs[:, None, 1:]  # (N, 1, C): cols index
        hist = np.empty((len(keypoints), c.cells, c.cells, n_orient), np.float64)
        for o in range(n_orient):
            I = integrals[o]
            hist[..., o] = I[y1, x1] - I[y0, x1] - I[y1, x0] + I[y0, x0]
        desc = hist.reshape(len(keypoints), -1)
        desc = np.maximum(desc, 0.0)
        if c.root:
            desc = np.sqrt(desc / (desc.sum(axis=1, keepdims=True) + 1e-12))
        return l2_normalize(desc.astype(np.float32))


def dense_classical(describer: "ClassicalDescriber", image: PreparedImage, stride: int) -> np.ndarray:
    """Descriptors on a regular grid: (D, ceil(H/stride), ceil(W/stride)); cell j centred on pixel
    stride*j + stride/2 - 0.5 (the convention of every stride-s map in the learned models)."""
    h, w = image.shape
    gh, gw = -(-h // stride), -(-w // stride)
    xs = stride * np.arange(gw) + stride / 2 - 0.5
    ys = stride * np.arange(gh) + stride / 2 - 0.5
    gx, gy = np.meshgrid(xs, ys)
    desc = describer.describe(image, np.column_stack([gx.ravel(), gy.ravel()]))
    return np.ascontiguousarray(desc.reshape(gh, gw, -1).transpose(2, 0, 1))
