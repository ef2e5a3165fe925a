"""The PromptMID descriptor network: a SAR branch and an optical branch, each aggregated by MSAA + CBAM
into an L2-normalised dense descriptor map.

Profiles share every module; they differ in the encoders:
- ``full``: SAR = SD 1.5 + ControlNet decoder features (D), optical = DINOv2 (V) + learnable VGG19.
- ``lite``: SAR and optical = small VGG-style CNNs on [image, phase-congruency M] channels; the land-use
  prompt enters as a learned class embedding (FiLM) instead of the CLIP text encoder. CPU-fast.
Ablations (paper Table III): ``use_diffusion`` (D; without it the SAR branch is a VGG19), ``use_dinov2``
(V), ``use_fusion`` (F; without it: equal-weight aggregation and no CBAM).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .cbam import CBAM
from .diffusion import DiffusionFeatureConfig, DiffusionFeatures
from .dinov2 import DinoFeatures
from .msaa import MSAA, MeanAggregation, to_grid
from .prompts import LandUseFiLM
from .vgg import VGG19_LAYERS, VGG19_TAPS, VGGFeatures, relu_indices

LITE_LAYERS: list = [16, "M", 32, 32, "M", 64, 64, "M", 96]
# Lite models for dense use (translation-correlation training), by size; the shipped one was chosen on the
# validation split (resources/models/MODEL_CARD.md).
DENSE_SIZES: dict = {
    "small": {"lite_layers": [16, "M", 32, "M", 48], "head_width": 32},
    "base": {"lite_layers": [24, "M", 48, 48, "M", 64, 64], "head_width": 48},
}


def dense_config(size: str = "small", residual: bool = True) -> "ModelConfig":
    """A lite model for dense maps: CFOG channels in, land-use FiLM on the SAR branch, MSAA + CBAM at stride
    2; out: a learned correction of the CFOG channels (``residual``) or free 16-D maps. Few channels: the
    search correlates them one by one."""
    from ..dense.cfog import CfogConfig

    dim = CfogConfig().channels if residual else 16
    return ModelConfig(profile="lite", pc_input=False, orientation_input=False, classical_prior=False, cfog_input=True,
                       dense_maps=True, cfog_residual=residual, desc_dim=dim, out_stride=2, **DENSE_SIZES[size])


def map_stride(cfg: "ModelConfig") -> int:
    """Stride of the maps the branches return (the CFOG residual is added on the pixel grid)."""
    return 1 if cfg.cfog_residual else cfg.out_stride


@dataclass
class ModelConfig:
    profile: str = "lite"  # "lite" | "full"
    use_diffusion: bool = True  # D (full profile)
    use_dinov2: bool = True  # V (full profile)
    use_fusion: bool = True  # F: MSAA + CBAM
    desc_dim: int = 128
    out_stride: int = 2  # descriptor map stride, pixels
    cbam_reduction: int = 16
    lite_layers: list = field(default_factory=lambda: list(LITE_LAYERS))
    pc_input: bool = True  # lite: add the phase-congruency max moment as an input channel
    orientation_input: bool = True  # lite: add the log-Gabor orientation shares (modality-invariant structure)
    n_orient: int = 6
    # lite: add the CFOG oriented-gradient channels (dense/cfog.py, default settings) as input channels:
    # a modality-invariant start the CNN refines, cheap at any size
    cfog_input: bool = False
    # The model was trained for dense use (translation-correlation loss): its maps drive the global search
    # and the guided templates instead of the handcrafted CFOG maps.
    dense_maps: bool = False
    # lite + cfog_input: the output is the input's CFOG channels plus a learned correction (scaled by a
    # zero-initialised scalar, so training starts exactly at CFOG), at stride 1, keeping CFOG's orientation
    # bins (the search turns them with the pose). desc_dim must equal the CFOG channel count.
    cfog_residual: bool = False
    # lite: a frozen, modality-invariant scale for MSAA: the classical phase-congruency histogram descriptor
    # evaluated densely (the role frozen foundation features play in the full model)
    classical_prior: bool = True
    prior_stride: int = 4
    prior_channels: int = 216
    prior_logit: float = 1.5  # initial MSAA logit of the prior scale (others 0)
    # Skip connection of the frozen prior to the output: final descriptor [sqrt(w) classical, sqrt(1-w) learned],
    # i.e. similarity = w cos(classical) + (1 - w) cos(learned). 0 = learned only. Chosen on the validation split.
    prior_skip: float = 0.0
    # Initialise the head to pass the prior through (pooled prior bins -> output, other scales damped,
    # CBAM uniform, projection identity) so training starts at the prior's accuracy, not below it.
    prior_passthrough: bool = False
    film_dim: int = 16
    head_width: int = 64  # MSAA / CBAM width (at least desc_dim); the dense models use less, for speed
    lite_group_norm: int = 8  # GroupNorm groups in the lite CNNs (0 = none)
    vgg_layers: list = field(default_factory=lambda: list(VGG19_LAYERS))  # full profile (tests shrink it)
    vgg_taps: tuple = VGG19_TAPS
    diffusion: DiffusionFeatureConfig = field(default_factory=DiffusionFeatureConfig)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        d = json.loads(text)
        d["diffusion"] = DiffusionFeatureConfig(**{**d.get("diffusion", {}), "blocks": tuple(d.get("diffusion", {}).get("blocks", (1, 2, 3)))})
        d["vgg_taps"] = tuple(d.get("vgg_taps", VGG19_TAPS))
        return cls(**d)


def block_taps(layers: Sequence) -> list[int]:
    """ReLU indices at the end of each resolution block (before every pool, and the last one)."""
    relus = relu_indices(layers)
    taps, k = [], 0
    for i, layer in enumerate(layers):
        if layer != "M":
            k += 1
        if layer != "M" and (i + 1 == len(layers) or layers[i + 1] == "M"):
            taps.append(relus[k - 1])
    return taps


def tap_strides(layers: Sequence, taps: Sequence[int]) -> list[int]:
    strides, stride, idx = {}, 1, 0
    for layer in layers:
        if layer == "M":
            stride *= 2
            idx += 1
        else:
            strides[idx + 1] = stride
            idx += 2
    return [strides[t] for t in taps]


@dataclass
class Foundation:
    """Pretrained models the full profile needs (loaded from the model directory)."""

    diffusion: Optional[DiffusionFeatures] = None
    dino: Optional[DinoFeatures] = None
    vgg_state: Optional[dict] = None  # torchvision VGG19 state dict for the learnable fine encoder


class Head(nn.Module):
    """Aggregation (MSAA or mean) -> CBAM (when fusion is on) -> 1x1 projection -> L2 normalisation."""

    def __init__(self, channels: Sequence[int], strides: Sequence[float], cfg: ModelConfig,
                 init_logits: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        width = max(cfg.desc_dim, cfg.head_width)
        agg = MSAA if cfg.use_fusion else MeanAggregation
        self.aggregate = agg(channels, strides, width, cfg.out_stride, init_logits)
        self.cbam = CBAM(width, cfg.cbam_reduction) if cfg.use_fusion else nn.Identity()
        self.proj = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(width, cfg.desc_dim, 1))
        if cfg.prior_passthrough and uses_prior(cfg) and cfg.use_fusion:
            self._init_passthrough(channels[-1], width, cfg.desc_dim)

    @torch.no_grad()
    def _init_passthrough(self, prior_channels: int, width: int, desc_dim: int) -> None:
        """Output = L2-normalised pooling of the (non-negative) prior histogram bins at start: bin j feeds
        channel j mod width with a positive weight, so the ReLU before the projection passes it intact."""
        head = self.aggregate.heads[-1]
        head.weight.zero_()
        head.bias.zero_()
        for j in range(prior_channels):
            head.weight[j % width, j, 0, 0] = 1.0
        for other in list(self.aggregate.heads)[:-1]:
            other.weight.mul_(0.05)
            other.bias.zero_()
        self.aggregate.scale_logits[-1] = 3.0
        self.cbam.channel.mlp[-1].weight.zero_()  # sigmoid(0): uniform channel attention
        self.cbam.spatial.conv.weight.zero_()  # uniform spatial attention
        conv = self.proj[1]
        conv.weight.zero_()
        conv.bias.zero_()
        for k in range(min(width, desc_dim)):
            conv.weight[k, k, 0, 0] = 1.0

    def forward(self, feats: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return F.normalize(self.proj(self.cbam(self.aggregate(feats, size))), dim=1)


class CfogResidual(nn.Module):
    """out = CFOG channels of the input + s * (head output on the pixel grid), s a zero-initialised scalar."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.out_stride = cfg.out_stride
        self.channels = cfg.desc_dim
        self.scale = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, head_out: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        return x[:, -self.channels:] + self.scale * to_grid(head_out, self.out_stride, 1, size)


class SarBranch(nn.Module):
    def __init__(self, cfg: ModelConfig, foundation: Foundation) -> None:
        super().__init__()
        self.cfg = cfg
        self.diffusion = None
        self.film = None
        if cfg.profile == "full" and cfg.use_diffusion:
            if foundation.diffusion is None:
                raise ValueError("full profile with diffusion needs Foundation.diffusion")
            self.diffusion = foundation.diffusion
            channels, strides = self.diffusion.out_channels, self.diffusion.strides
        else:
            layers, taps, in_ch = _cnn_spec(cfg, sar=True)
            self.encoder = VGGFeatures(layers, taps, in_ch, _group_norm(cfg))
            if cfg.profile == "full" and foundation.vgg_state is not None:
                self.encoder.load_torchvision(foundation.vgg_state)
            channels, strides = self.encoder.out_channels, tap_strides(layers, taps)
            if cfg.profile == "lite":
                self.film = LandUseFiLM(channels, cfg.film_dim)
        channels, strides, logits = _with_prior(cfg, list(channels), list(strides))
        self.head = Head(channels, strides, cfg, logits)
        self.residual = CfogResidual(cfg) if cfg.cfog_residual else None

    def forward(self, x: torch.Tensor, land_use: Sequence[Optional[str]], classes: torch.Tensor,
                prior: Optional[torch.Tensor] = None) -> torch.Tensor:
        size = _out_size(x, self.cfg.out_stride)
        if self.diffusion is not None:
            feats = self.diffusion(x[:, :1], land_use)
        else:
            inp = x.repeat(1, 3, 1, 1) if self.cfg.profile == "full" else x  # VGG19 expects RGB
            feats = self.encoder(inp)
            if self.film is not None:
                feats = self.film(feats, classes)
        out = self.head(_add_prior(self.cfg, list(feats), prior), size)
        return self.residual(x, out) if self.residual is not None else out


class OpticalBranch(nn.Module):
    def __init__(self, cfg: ModelConfig, foundation: Foundation) -> None:
        super().__init__()
        self.cfg = cfg
        layers, taps, in_ch = _cnn_spec(cfg, sar=False)
        self.encoder = VGGFeatures(layers, taps, in_ch, _group_norm(cfg))
        if cfg.profile == "full" and foundation.vgg_state is not None:
            self.encoder.load_torchvision(foundation.vgg_state)
        channels, strides = list(self.encoder.out_channels), tap_strides(layers, taps)
        self.dino = None
        if cfg.profile == "full" and cfg.use_dinov2:
            if foundation.dino is None:
                raise ValueError("full profile with DINOv2 needs Foundation.dino")
            self.dino = foundation.dino
            channels, strides = [self.dino.out_channels] + channels, [self.dino.patch] + strides
        channels, strides, logits = _with_prior(cfg, channels, strides)
        self.head = Head(channels, strides, cfg, logits)
        self.residual = CfogResidual(cfg) if cfg.cfog_residual else None

    def forward(self, x: torch.Tensor, prior: Optional[torch.Tensor] = None) -> torch.Tensor:
        size = _out_size(x, self.cfg.out_stride)
        feats = self.encoder(x)
        if self.dino is not None:
            feats = [self.dino(x[:, :3])] + feats
        out = self.head(_add_prior(self.cfg, list(feats), prior), size)
        return self.residual(x, out) if self.residual is not None else out


def _cnn_spec(cfg: ModelConfig, sar: bool) -> tuple[list, list[int], int]:
    if cfg.profile == "full":
        return list(cfg.vgg_layers), list(cfg.vgg_taps), 3
    in_ch = (1 if sar else 3) + (1 if cfg.pc_input else 0) + (cfg.n_orient if cfg.orientation_input else 0)
    if cfg.cfog_input:
        from ..dense.cfog import CfogConfig

        in_ch += CfogConfig().channels
    return list(cfg.lite_layers), block_taps(cfg.lite_layers), in_ch


def uses_prior(cfg: ModelConfig) -> bool:
    return cfg.profile == "lite" and cfg.classical_prior


def _with_prior(cfg: ModelConfig, channels: list, strides: list) -> tuple[list, list, Optional[list]]:
    if not uses_prior(cfg):
        return channels, strides, None
    return channels + [cfg.prior_channels], strides + [cfg.prior_stride], [0.0] * len(channels) + [cfg.prior_logit]


def _add_prior(cfg: ModelConfig, feats: list, prior: Optional[torch.Tensor]) -> list:
    if not uses_prior(cfg):
        return feats
    if prior is None:
        raise ValueError("this model needs the dense classical prior (descriptors.learned.branch_prior)")
    return feats + [prior]


def _group_norm(cfg: ModelConfig) -> int:
    return cfg.lite_group_norm if cfg.profile == "lite" else 0  # full: torchvision VGG19 layout, no norm


def _out_size(x: torch.Tensor, stride: int) -> tuple[int, int]:
    return -(-x.shape[2] // stride), -(-x.shape[3] // stride)


class PromptMIDNet(nn.Module):
    def __init__(self, cfg: ModelConfig, foundation: Optional[Foundation] = None) -> None:
        super().__init__()
        foundation = foundation or Foundation()
        self.cfg = cfg
        self.sar = SarBranch(cfg, foundation)
        self.optical = OpticalBranch(cfg, foundation)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint holds: everything except the frozen foundation models."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("sar.diffusion.", "optical.dino."))}

    def load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        own = self.trainable_state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"checkpoint does not fit this model config: missing {missing[:3]}, unexpected {unexpected[:3]}")
        self.load_state_dict(state, strict=False)
