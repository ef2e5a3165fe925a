"""Land-use prompts: the seven classes, the text template, and the learned class embedding (FiLM)
that stands in for the text encoder in the lite profile."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ..config import LAND_USE_CLASSES
from ..errors import InputError

DEFAULT_TEMPLATE = "a SAR image of {land_use}"


def land_use_index(name: Optional[str]) -> int:
    """Index into LAND_USE_CLASSES; None/unknown -> "others" (the paper's catch-all class)."""
    if name is None:
        return LAND_USE_CLASSES.index("others")
    key = name.strip().lower()
    if key not in LAND_USE_CLASSES:
        raise InputError(f"Unknown land-use class '{name}'. Use one of: {', '.join(LAND_USE_CLASSES)}.")
    return LAND_USE_CLASSES.index(key)


def prompt_text(name: Optional[str], template: str = DEFAULT_TEMPLATE) -> str:
    return template.format(land_use=LAND_USE_CLASSES[land_use_index(name)])


class LandUseFiLM(nn.Module):
    """Feature-wise modulation by a learned land-use embedding: y = x * (1 + gamma) + beta.

    Zero-initialised, so an untrained embedding is the identity and training decides how much the
    prompt matters.
    """

    def __init__(self, channels: Sequence[int], dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(LAND_USE_CLASSES), dim)
        self.to_affine = nn.ModuleList(nn.Linear(dim, 2 * c) for c in channels)
        for lin in self.to_affine:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, feats: Sequence[torch.Tensor], classes: torch.Tensor) -> list[torch.Tensor]:
        e = self.embed(classes)
        out = []
        for f, lin in zip(feats, self.to_affine):
            gamma, beta = lin(e).chunk(2, dim=1)
            out.append(f * (1 + gamma[:, :, None, None]) + beta[:, :, None, None])
        return out
