"""Learned dense maps: the PromptMID network's descriptor maps behind the dense-feature interface.

The SAR branch (with its land-use prompt) and the optical branch give (D, h, w) maps at the network's
``out_stride`` (or CFOG channels plus a learned correction at stride 1, ``cfog_residual``); guided
templates need stride 1, so the map is resampled onto the pixel grid (cell centres kept in place, as MSAA
does). Only models trained for dense use (``ModelConfig.dense_maps``: the
translation-correlation loss) drive the search; others keep the handcrafted CFOG maps.
"""

from __future__ import annotations

import torch

from ..descriptors.base import PreparedImage
from ..models.msaa import to_grid
from ..models.network import ModelConfig, map_stride
from .cfog import CfogConfig
from .base import DenseMap


class LearnedFeaturizer:
    name = "learned"

    def __init__(self, describer: "LearnedDescriber") -> None:  # noqa: F821 (descriptors.learned imports us)
        self.describer = describer

    def dense_map(self, image: PreparedImage) -> DenseMap:
        # The describer keeps the network's output per image (its keypoint descriptors read the same one).
        f = self.describer.dense(image).float().cpu()
        return learned_map(f, torch.from_numpy(image.valid.copy()), self.describer.net.cfg)


def learned_map(f: torch.Tensor, valid: torch.Tensor, cfg: ModelConfig) -> DenseMap:
    """A branch's (1, D, h, w) output as a stride-1 DenseMap over ``valid`` (H, W), zero where there is no
    data (differentiable: training warps it as the search does). A CFOG residual keeps CFOG's orientation
    bins, which the search turns with the pose."""
    f = to_grid(f, map_stride(cfg), 1, tuple(valid.shape))[0] * valid
    n_orient, period = (CfogConfig().n_orientations, 180.0) if cfg.cfog_residual else (0, 0.0)
    return DenseMap(f, valid, 1, n_orient, period, learned=True)
