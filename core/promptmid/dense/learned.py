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
from ..models.network import map_stride
from .cfog import CfogConfig
from .base import DenseMap


class LearnedFeaturizer:
    name = "learned"

    def __init__(self, describer: "LearnedDescriber") -> None:  # noqa: F821 (descriptors.learned imports us)
        self.describer = describer

    def dense_map(self, image: PreparedImage) -> DenseMap:
        key = ("learned-dense", id(self.describer.net))
        cached = image.cache.get(key)
        if cached is not None:
            return cached
        cfg = self.describer.net.cfg
        f = self.describer.dense(image).float()
        h, w = image.shape
        f = to_grid(f, map_stride(cfg), 1, (h, w))[0].cpu()
        valid = torch.from_numpy(image.valid.copy())
        # a CFOG residual keeps CFOG's orientation bins, which the search turns with the pose
        n_orient, period = (CfogConfig().n_orientations, 180.0) if cfg.cfog_residual else (0, 0.0)
        out = DenseMap(f * valid, valid, 1, n_orient, period, learned=True)
        image.cache[key] = out
        return out
