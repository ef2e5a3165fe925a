"""Frozen DINOv2 patch features (coarse, semantic) for the optical branch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DinoFeatures(nn.Module):
    """Wraps ``transformers.Dinov2Model``: RGB [0, 1] (B, 3, H, W) -> patch tokens (B, C, H/14, W/14).

    The input is padded to a multiple of the patch size; the feature map is cropped back so that it
    covers the input exactly (stride 14). Weights stay frozen (the paper keeps DINOv2 fixed).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.patch = int(model.config.patch_size)
        self.out_channels = int(model.config.hidden_size)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_pretrained(cls, path: str, dtype: torch.dtype = torch.float32) -> "DinoFeatures":
        from transformers import Dinov2Model

        return cls(Dinov2Model.from_pretrained(path, torch_dtype=dtype))

    def train(self, mode: bool = True) -> "DinoFeatures":
        super().train(mode)
        self.model.eval()  # frozen: dropout/stochastic depth stay off
        return self

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        b, _, h, w = rgb.shape
        x = (rgb - self.mean) / self.std
        ph, pw = (-h) % self.patch, (-w) % self.patch
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        gh, gw = x.shape[2] // self.patch, x.shape[3] // self.patch
        with torch.no_grad():
            tokens = self.model(pixel_values=x.to(next(self.model.parameters()).dtype)).last_hidden_state
        patches = tokens[:, -gh * gw :, :]  # drop CLS (and register tokens, if any)
        fmap = patches.transpose(1, 2).reshape(b, -1, gh, gw).float()
        return fmap  # ceil(H/14) x ceil(W/14) cells; cell (i, j) covers pixels [14 i, 14 i + 14)
