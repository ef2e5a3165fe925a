"""Trained-head checkpoints: ``<name>.safetensors`` (tensors) + ``<name>.json`` (model config + metadata)."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import torch
from safetensors.torch import load_file, save_file

from ..errors import ModelMissingError
from ..io.atomic import atomic_path
from .network import ModelConfig, PromptMIDNet


def sidecar(path: str) -> str:
    return os.path.splitext(path)[0] + ".json"


def save_checkpoint(path: str, net: PromptMIDNet, meta: Optional[dict[str, Any]] = None) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.trainable_state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp)
    with atomic_path(sidecar(path)) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"model": json.loads(net.cfg.to_json()), "meta": meta or {}}, fh, indent=2)


def load_checkpoint(path: str) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, tensors, metadata); ModelMissingError naming the file when absent or unreadable."""
    if not os.path.isfile(path) or not os.path.isfile(sidecar(path)):
        raise ModelMissingError(f"Descriptor weights not found: {path} (and its .json config).")
    try:
        with open(sidecar(path), encoding="utf-8") as fh:
            info = json.load(fh)
        cfg = ModelConfig.from_json(json.dumps(info["model"]))
        state = load_file(path)
    except Exception as exc:  # corrupt file: safetensors/json raise various types
        raise ModelMissingError(f"Descriptor weights {os.path.basename(path)} are corrupt or incompatible ({type(exc).__name__}: {exc}).") from None
    return cfg, state, info.get("meta", {})
