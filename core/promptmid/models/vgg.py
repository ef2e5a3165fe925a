"""VGG-style feature stacks in plain torch, with torchvision's state-dict key names.

torchvision cannot be installed beside the CPU torch wheel here, so VGG19 is rebuilt layer for layer:
``features.<i>`` indices match ``torchvision.models.vgg19().features``, so a standard ImageNet
``vgg19-*.pth`` loads unchanged. The lite profile uses the same class with a slimmer layer list.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

Layer = Union[int, str]  # int: 3x3 conv + ReLU with that many channels; "M": 2x2 max-pool

VGG19_LAYERS: list[Layer] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
# torchvision indices of relu2_2, relu3_4, relu4_4 in vgg19().features (strides 2, 4, 8)
VGG19_TAPS = (8, 17, 26)


def relu_indices(layers: Sequence[Layer]) -> list[int]:
    """Module indices of the ReLUs in the Sequential built from ``layers`` (conv i, relu i+1, pool)."""
    out, i = [], 0
    for layer in layers:
        if layer == "M":
            i += 1
        else:
            out.append(i + 1)
            i += 2
    return out


class VGGFeatures(nn.Module):
    """``features`` = Sequential(conv, ReLU, ..., MaxPool) truncated after the last tap.

    forward returns the activations at the ``taps`` module indices, shallowest first.
    """

    def __init__(self, layers: Sequence[Layer] = VGG19_LAYERS, taps: Sequence[int] = VGG19_TAPS, in_channels: int = 3,
                 group_norm: int = 0) -> None:
        """``group_norm`` > 0 puts GroupNorm(group_norm) inside each conv's slot (``features.<i>`` becomes a
        conv+norm pair), which trains much faster from scratch; 0 keeps torchvision's exact layout."""
        super().__init__()
        modules: list[nn.Module] = []
        c = in_channels
        for layer in layers:
            if layer == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                conv = nn.Conv2d(c, int(layer), 3, padding=1)
                if group_norm:
                    conv = nn.Sequential(conv, nn.GroupNorm(group_norm, int(layer)))
                modules += [conv, nn.ReLU(inplace=True)]
                c = int(layer)
        self.taps = tuple(taps)
        self.features = nn.Sequential(*modules[: max(self.taps) + 1])
        self.out_channels = [self._channels_at(t) for t in self.taps]

    def _channels_at(self, index: int) -> int:
        for m in reversed(list(self.features)[: index + 1]):
            conv = m[0] if isinstance(m, nn.Sequential) else m
            if isinstance(conv, nn.Conv2d):
                return conv.out_channels
        raise ValueError("tap before the first convolution")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in self.taps:
                outs.append(x)
        return outs

    def load_torchvision(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a torchvision VGG19 state dict (``features.*`` keys; the classifier is ignored)."""
        own = self.state_dict()
        wanted = {k: v for k, v in state_dict.items() if k in own}
        missing = [k for k in own if k not in wanted]
        if missing:
            raise KeyError(f"VGG19 weights lack {len(missing)} expected tensors, e.g. {missing[0]}")
        for k, v in wanted.items():
            if v.shape != own[k].shape:
                raise ValueError(f"VGG19 tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
        self.load_state_dict(wanted, strict=True)


def layers_from_state_dict(state: dict[str, torch.Tensor], template: Sequence[Layer] = VGG19_LAYERS) -> list[Layer]:
    """The VGG19 layer list with the widths found in a torchvision-keyed state dict (same depth and
    indices), so slimmed variants with the standard layout load too. Convs absent from the dict (beyond
    the truncation) keep the template width."""
    out: list[Layer] = []
    i = 0
    for layer in template:
        if layer == "M":
            out.append("M")
            i += 1
        else:
            w = state.get(f"features.{i}.weight")
            out.append(int(w.shape[0]) if w is not None else layer)
            i += 2
    return out
