"""Learned descriptors (lite and full PromptMID profiles) behind the Describer interface."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..dense.cfog import CfogFeaturizer
from ..models.network import PromptMIDNet, map_stride, uses_prior
from .classical import ClassicalDescriber, dense_classical
from ..keypoints.phase_congruency import orientation_shares
from ..models.prompts import land_use_index
from .base import PreparedImage


def branch_input(image: PreparedImage, net: PromptMIDNet) -> torch.Tensor:
    """(1, C, H, W) float32 network input for one prepared image."""
    cfg = net.cfg
    if image.modality == "sar":
        chans = [image.gray]
    else:
        chans = list(image.color) if image.color is not None else [image.gray] * 3
    if cfg.profile == "lite" and cfg.pc_input:
        chans.append(image.pc.max_moment)
    if cfg.profile == "lite" and cfg.orientation_input:
        chans.extend(orientation_shares(image.pc))
    if cfg.profile == "lite" and cfg.cfog_input:
        chans.extend(CfogFeaturizer().dense_map(image).features.numpy())
    x = np.stack(chans).astype(np.float32)
    x[:, ~image.valid] = 0.0
    return torch.from_numpy(x)[None]


def branch_prior(image: PreparedImage, net: PromptMIDNet) -> Optional[torch.Tensor]:
    """(1, 216, H/s, W/s) dense classical descriptor map for models with the classical prior, else None."""
    if not uses_prior(net.cfg):
        return None
    return torch.from_numpy(dense_classical(_CLASSICAL, image, net.cfg.prior_stride))[None]


def sample_descriptors(dense: torch.Tensor, keypoints: torch.Tensor, stride: int) -> torch.Tensor:
    """Bilinear samples of a (B, D, h, w) stride-``stride`` map at (B, N, 2) array-index pixel coordinates.

    Cell j of the map covers pixels [stride*j, stride*j + stride), so pixel x sits at cell coordinate
    (x + 0.5) / stride - 0.5; with align_corners=False that is normalised u = (x + 0.5) / stride / w * 2 - 1.
    Returns (B, N, D), re-normalised to unit length.
    """
    _, _, h, w = dense.shape
    g = torch.empty_like(keypoints, dtype=dense.dtype)
    g[..., 0] = (keypoints[..., 0] + 0.5) / stride / w * 2 - 1
    g[..., 1] = (keypoints[..., 1] + 0.5) / stride / h * 2 - 1
    out = F.grid_sample(dense, g[:, :, None, :], mode="bilinear", align_corners=False, padding_mode="border")
    return F.normalize(out[..., 0].transpose(1, 2), dim=2)


_CLASSICAL = ClassicalDescriber()


class LearnedDescriber:
    def __init__(self, net: PromptMIDNet, name: str, device: Optional[str] = None) -> None:
        self.net = net.eval()
        self.name = name
        # (full search, near georeference) verdict thresholds calibrated for this model, when its checkpoint
        # carries them; None: the engine-wide ones
        self.verdict: Optional[tuple] = None
        self.device = torch.device(device or "cpu")
        self.net.to(self.device)

    def featurizer(self) -> Optional["LearnedFeaturizer"]:
        """The dense maps for search and templates when the model was trained for them, else None."""
        from ..dense.learned import LearnedFeaturizer

        return LearnedFeaturizer(self) if self.net.cfg.dense_maps else None

    @torch.inference_mode()
    def dense(self, image: PreparedImage) -> torch.Tensor:
        """The branch's (1, D, h, w) output, computed once per image: the dense maps for search and
        templates and the keypoint descriptors are both read from it."""
        key = ("net-output", id(self.net), image.land_use)
        if key not in image.cache:
            image.cache[key] = self._forward(image)
        return image.cache[key]

    def _forward(self, image: PreparedImage) -> torch.Tensor:
        x = branch_input(image, self.net).to(self.device)
        prior = branch_prior(image, self.net)
        prior = prior.to(self.device) if prior is not None else None
        if image.modality == "sar":
            classes = torch.tensor([land_use_index(image.land_use)], device=self.device)
            return self.net.sar(x, [image.land_use], classes, prior)
        return self.net.optical(x, prior)

    @torch.inference_mode()
    def describe(self, image: PreparedImage, keypoints: np.ndarray) -> np.ndarray:
        if len(keypoints) == 0:
            return np.zeros((0, self.net.cfg.desc_dim), np.float32)
        dense = self.dense(image)
        kp = torch.as_tensor(np.asarray(keypoints, np.float32), device=self.device)[None]
        learned = sample_descriptors(dense, kp, map_stride(self.net.cfg))[0].float().cpu().numpy()
        w = self.net.cfg.prior_skip if uses_prior(self.net.cfg) else 0.0
        if w <= 0:
            return learned
        prior = _CLASSICAL.describe(image, np.asarray(keypoints, np.float32))  # exact, not the stride-4 grid
        return np.hstack([np.sqrt(w) * prior, np.sqrt(1 - w) * learned]).astype(np.float32)
