"""Tiny, randomly initialised foundation models saved in the real model-directory layouts, so tests run
the same loading code (from_pretrained / torchvision state dict) as a user's real weights. The writer is
shared with the real-size check (scripts/full_size_check.py)."""

from __future__ import annotations

from promptmid.models.network import ModelConfig
from promptmid.models.random_model_dir import TINY, TINY_VGG, write_random_model_dir

__all__ = ["TINY_VGG", "make_tiny_model_dir", "tiny_full_config"]


def tiny_full_config(**overrides) -> ModelConfig:
    cfg = ModelConfig(profile="full", desc_dim=32, out_stride=4, cbam_reduction=4, vgg_layers=list(TINY_VGG))
    cfg.diffusion.ensemble = 1
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def make_tiny_model_dir(root: str, with_controlnet: bool = True) -> str:
    return write_random_model_dir(root, TINY, with_controlnet=with_controlnet, seed=0)


def tiny_dense_net():
    """The dense model's architecture (``dense_config("small")``, CFOG residual) with tiny widths."""
    from promptmid.models.network import PromptMIDNet, dense_config

    cfg = dense_config("small")
    cfg.lite_layers, cfg.head_width = [8, "M", 16], 16
    return PromptMIDNet(cfg)
