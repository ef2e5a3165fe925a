"""Stage 2, guided matching: tie points near the positions the global hypothesis predicts.

Two ways to find the optical partner of a SAR keypoint, both restricted to a window around its predicted
position (so a repeated structure elsewhere in the image cannot win):

* ``template``: the SAR dense map is warped into the optical frame by the hypothesis once; around each
  keypoint a template of it is correlated (zero-mean NCC over all channels, FFT) with the optical map over
  +-``radius_px``; the peak, refined to sub-pixel by a parabola fit, gives the tie point.
* ``descriptor``: PC-FAST keypoints of both images matched by descriptor similarity (PromptMID or any
  :class:`~promptmid.descriptors.base.Describer`), mutual nearest neighbours among candidates whose
  position agrees with the prediction within ``radius_px``.

Tie points are real measurements (SAR keypoint <-> where its structure is in the optical image) with real
residuals: they become the GCPs. Coordinates: work-grid array-index pixels (x = col, y = row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .dense.base import DenseMap, rotate_channels
from .dense.correlation import fft_len, peak_offset
from .geometry.fit import apply_h


@dataclass
class GuidedConfig:
    template_px: int = 33  # template side, work px (odd); 49 / 65 gave 39 / 40 fits within 3 px against 41 (dense, 84 train pairs, paper)
    radius_px: int = 8  # search radius around the global estimate, work px (pass 1)
    refine_radius_px: int = 3  # around the first fit (pass 2), for templates and descriptor matches
    max_points: int = 200  # keypoints tried (strongest first, spread by the detector)
    min_ncc: float = 0.25  # template peaks below this are not tie points
    min_peak_ratio: float = 1.05  # best / second peak (at least peak_gap_px away): rejects flat or repeated structure
    peak_gap_px: float = 2.0  # the second peak lies at least this far from the best
    # Learned maps: their correlation peaks are broad (stride-2 maps), so best / second within a few px is
    # near 1 even at the right place; on the validation split 1.0 (no test) kept the most right tie points
    # (1.0 / 1.02 at 3 px / 1.05 at 4 px: 16 / 15 / 9 of 24 fits within 3 px).
    min_peak_ratio_learned: float = 1.0
    min_valid: float = 0.9  # template pixels with data in both images, at least


@dataclass
class TiePoints:
    sar: np.ndarray  # (N, 2) SAR work px
    optical: np.ndarray  # (N, 2) optical work px
    score: np.ndarray  # (N,) similarity (NCC or cosine)

    def __len__(self) -> int:
        return len(self.sar)

    @staticmethod
    def empty() -> "TiePoints":
        return TiePoints(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, np.float32))

    def concat(self, other: "TiePoints") -> "TiePoints":
        return TiePoints(np.vstack([self.sar, other.sar]), np.vstack([self.optical, other.optical]),
                         np.concatenate([self.score, other.score]).astype(np.float32))


def rotation_of(h: np.ndarray) -> float:
    """Rotation angle (degrees) of the linear part of a 3x3 matrix, as the search defines it."""
    return math.degrees(math.atan2(h[1, 0] - h[0, 1], h[0, 0] + h[1, 1]))


def warp_dense(sar: DenseMap, h: np.ndarray, out_shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """SAR dense map (stride 1) resampled into the optical frame through ``h`` (SAR px -> optical px).
    Orientation channels are turned with the rotation of ``h`` so they mean the same as the optical's."""
    if sar.stride != 1:
        raise ValueError("guided matching needs stride-1 dense maps")
    ho, wo = out_shape
    hs, ws = sar.shape
    ys, xs = torch.meshgrid(torch.arange(ho, dtype=torch.float64), torch.arange(wo, dtype=torch.float64), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1) @ torch.from_numpy(np.linalg.inv(h)).T
    grid = torch.stack([(pts[..., 0] + 0.5) / ws * 2 - 1, (pts[..., 1] + 0.5) / hs * 2 - 1], -1).float()[None]
    grid = grid.to(sar.features.device)  # training warps maps that live on its device (differentiably)
    f = F.grid_sample(sar.features.float()[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    valid = sar.valid.to(sar.features.device).float()[None, None]
    v = F.grid_sample(valid, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0] > 0.999
    if sar.n_orientations:
        f = rotate_channels(f, [rotation_of(h)], sar.n_orientations, sar.orientation_period)
    return f[0] * v, v


def template_tie_points(optical: DenseMap, sar: DenseMap, h: np.ndarray, sar_points: np.ndarray,
                        cfg: GuidedConfig) -> TiePoints:
    """Template matching of the dense maps around each SAR point's predicted optical position."""
    if len(sar_points) == 0:
        return TiePoints.empty()
    ho, wo = optical.shape
    fs, vs = warp_dense(sar, h, (ho, wo))
    fo, vo = optical.features.float(), optical.valid
    t2 = cfg.template_px // 2
    r = int(cfg.radius_px)
    s2 = t2 + r
    pred = apply_h(h, sar_points[: cfg.max_points])
    centre = np.round(pred).astype(int)
    inside = (centre[:, 0] >= s2) & (centre[:, 0] < wo - s2) & (centre[:, 1] >= s2) & (centre[:, 1] < ho - s2)
    idx = np.flatnonzero(inside)
    if len(idx) == 0:
        return TiePoints.empty()
    cx, cy = torch.from_numpy(centre[idx, 0]), torch.from_numpy(centre[idx, 1])
    both = (vs & vo).float()
    tmpl, tv = _patches(fs, cx, cy, t2), _patches(both[None], cx, cy, t2)[:, 0]
    srch = _patches(fo, cx, cy, s2)
    ok = tv.mean(dim=(1, 2)) >= cfg.min_valid
    ncc = _zncc(tmpl * tv[:, None], srch, tv, per_channel=not optical.n_orientations)  # (N, 2r+1, 2r+1)
    flat = ncc.reshape(len(idx), -1)
    best, j = flat.max(dim=1)
    size = 2 * r + 1
    iy, ix = (j // size).numpy(), (j % size).numpy()
    # second peak: the best value at least peak_gap_px from the first
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    far = ((yy[None] - torch.from_numpy(iy)[:, None, None]) ** 2 + (xx[None] - torch.from_numpy(ix)[:, None, None]) ** 2) > cfg.peak_gap_px ** 2
    second = torch.where(far, ncc, torch.full_like(ncc, -1.0)).reshape(len(idx), -1).max(dim=1).values
    on_edge = (iy == 0) | (iy == size - 1) | (ix == 0) | (ix == size - 1)
    ratio = cfg.min_peak_ratio_learned if optical.learned else cfg.min_peak_ratio
    keep = (ok.numpy() & ~on_edge & (best.numpy() >= cfg.min_ncc) & (best.numpy() >= ratio * np.maximum(second.numpy(), 1e-6)))
    sub = np.array([peak_offset(ncc[k].numpy(), iy[k], ix[k]) for k in range(len(idx))]).reshape(-1, 2)
    opt = np.column_stack([centre[idx, 0] + ix - r + sub[:, 1], centre[idx, 1] + iy - r + sub[:, 0]]).astype(np.float64)
    # the template sat at round(pred), so the optical partner of the SAR point is pred + (found - centre)
    opt += pred[idx] - centre[idx]
    k = np.flatnonzero(keep)
    return TiePoints(sar_points[idx[k]].astype(np.float64), opt[k], best.numpy()[k].astype(np.float32))


def _patches(img: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, half: int) -> torch.Tensor:
    """(N, C, 2h+1, 2h+1) windows of a (C, H, W) map centred on integer (cx, cy)."""
    off = torch.arange(-half, half + 1)
    ys = (cy[:, None] + off[None]).clamp(0, img.shape[1] - 1)
    xs = (cx[:, None] + off[None]).clamp(0, img.shape[2] - 1)
    return img[:, ys[:, :, None], xs[:, None, :]].permute(1, 0, 2, 3)


def _zncc(tmpl: torch.Tensor, search: torch.Tensor, tmask: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """Zero-mean NCC of each (C, t, t) template (masked by (t, t)) at every offset inside its (C, s, s)
    search window, all channels as one vector. Returns (N, s-t+1, s-t+1).

    The mean removed is the vector's (``per_channel`` False: CFOG channels share one statistic in both
    modalities) or each channel's own (learned maps, whose channels have their own offsets per branch)."""
    n_, c, t, _ = tmpl.shape
    s = search.shape[-1]
    out = s - t + 1
    P = fft_len(s, even=True)  # valid offsets only read s(p + d) with p + d < s: no wrap-around below size s
    m = tmask[:, None]
    npx = m.sum(dim=(1, 2, 3)).clamp(min=1)  # template pixels
    dims = (2, 3) if per_channel else (1, 2, 3)
    t_mean = tmpl.sum(dim=dims, keepdim=True) / (npx if per_channel else npx * c)[:, None, None, None]
    tz = (tmpl - t_mean) * m
    t_norm = torch.sqrt((tz ** 2).sum(dim=(1, 2, 3))).clamp(min=1e-9)
    Fs = torch.fft.rfft2(search, s=(P, P))
    num = torch.fft.irfft2((Fs * torch.fft.rfft2(tz, s=(P, P)).conj()).sum(1), s=(P, P))[:, :out, :out]
    # The mask is the same for every channel, so window sums need one mask FFT; the vector mean needs the
    # channel sums only (two single-channel FFTs), per-channel means each channel's window sum.
    Fm = torch.fft.rfft2(m[:, 0], s=(P, P)).conj()
    s_sq = torch.fft.irfft2(torch.fft.rfft2((search ** 2).sum(1), s=(P, P)) * Fm, s=(P, P))[:, :out, :out]
    if per_channel:
        sums = torch.fft.irfft2(Fs * Fm[:, None], s=(P, P))[:, :, :out, :out]
        var = s_sq - (sums ** 2).sum(1) / npx[:, None, None]
    else:
        s_sum = torch.fft.irfft2(Fs.sum(1) * Fm, s=(P, P))[:, :out, :out]
        var = s_sq - s_sum ** 2 / (npx * c)[:, None, None]
    return num / (t_norm[:, None, None] * torch.sqrt(var.clamp(min=1e-9)))


def descriptor_tie_points(kp_optical: np.ndarray, desc_optical: np.ndarray, kp_sar: np.ndarray, desc_sar: np.ndarray,
                          h: np.ndarray, radius_px: float) -> TiePoints:
    """Mutual nearest neighbours by descriptor (cosine) among pairs whose optical keypoint lies within
    ``radius_px`` of the SAR keypoint's predicted position ``h(p_sar)``."""
    if len(kp_optical) == 0 or len(kp_sar) == 0:
        return TiePoints.empty()
    kp_sar, kp_optical = np.asarray(kp_sar, np.float64), np.asarray(kp_optical, np.float64)
    i, j = _pairs_within(apply_h(h, kp_sar), kp_optical, radius_px)
    if len(i) == 0:
        return TiePoints.empty()
    ds, do = np.asarray(desc_sar, np.float32), np.asarray(desc_optical, np.float32)
    sim = np.einsum("kc,kc->k", ds[i], do[j])
    keep = np.flatnonzero(_best_of(i, sim) & _best_of(j, sim))
    keep = keep[np.argsort(i[keep], kind="stable")]  # in SAR keypoint order, as the fit has always seen them
    return TiePoints(kp_sar[i[keep]], kp_optical[j[keep]], sim[keep].astype(np.float32))


def _pairs_within(a: np.ndarray, b: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with |a_i - b_j| <= radius, through a grid of radius-sized cells (the keypoint
    sets hold thousands of points; the all-pairs distance matrix cost more than the rest of the stage)."""
    cell = max(float(radius), 1e-6)
    lo = np.minimum(a.min(axis=0), b.min(axis=0))
    ca, cb = np.floor((a - lo) / cell).astype(np.int64), np.floor((b - lo) / cell).astype(np.int64)
    width = int(max(ca[:, 0].max(), cb[:, 0].max())) + 3
    key_b = (cb[:, 1] + 1) * width + cb[:, 0] + 1
    order = np.argsort(key_b, kind="stable")
    sorted_keys = key_b[order]
    ii, jj = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            key = (ca[:, 1] + 1 + dy) * width + ca[:, 0] + 1 + dx
            start, end = np.searchsorted(sorted_keys, key, "left"), np.searchsorted(sorted_keys, key, "right")
            n = end - start
            rows = np.repeat(np.arange(len(a)), n)
            offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
            ii.append(rows)
            jj.append(order[np.repeat(start, n) + offs])
    i, j = np.concatenate(ii), np.concatenate(jj)
    near = np.hypot(*(a[i] - b[j]).T) <= radius
    return i[near], j[near]


def _best_of(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask of the highest-scoring entry of each group (the first on ties)."""
    order = np.lexsort((-score, group))
    first = np.ones(len(order), bool)
    first[1:] = group[order][1:] != group[order][:-1]
    out = np.zeros(len(group), bool)
    out[order[first]] = True
    return out
