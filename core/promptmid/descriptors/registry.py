"""Engine name -> descriptor factory, with errors that list the valid names and the missing files.

- ``default``: the shipped CPU model (``dense``); the name users and the plugin pick by default.
- ``dense``: the compact (lite-profile) PromptMID network trained for dense use (translation-correlation
  loss): its maps drive the search and the templates, its descriptors the guided matches. The default
  since it gave more right fits on the train split than ``lite`` under both protocols (README).
- ``lite``: the earlier shipped model: compact PromptMID descriptors trained on points only; search and
  templates on the handcrafted CFOG maps.
- ``promptmid``: the full model (SD 1.5 + ControlNet, DINOv2, VGG19) from the model directory.
- ``classical``: RIFT-style phase-congruency descriptor; needs no weights.
- ``area``: no descriptor at all: global search + dense template tie points only (shows in the benchmark
  what the descriptor adds).
- ``sift``: OpenCV SIFT with its own detector and a ratio test (benchmark peer, whole-image matching).

Every engine but ``sift`` runs global search -> guided tie points -> fit -> verdict; the descriptor adds
guided descriptor tie points to the template ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from ..errors import InputError, ModelMissingError
from .base import Describer
from .classical import ClassicalDescriber

LITE_FILENAME = "promptmid-lite.safetensors"
DENSE_FILENAME = "promptmid-dense.safetensors"
DEFAULT_FILENAME = DENSE_FILENAME
DEFAULT_ENV_VAR = "PROMPTMID_WEIGHTS"
TRAIN_TARGET = {DEFAULT_FILENAME: "train-default", LITE_FILENAME: "train-lite"}


def shipped_checkpoint(filename: str = DEFAULT_FILENAME) -> str:
    """Shipped weights: $PROMPTMID_WEIGHTS (the default model only), else ``resources/models`` of the
    repository or of the plugin bundle (both sit next to the engine package's parent folder)."""
    env = os.environ.get(DEFAULT_ENV_VAR)
    if env and filename == DEFAULT_FILENAME:
        return env
    here = Path(__file__).resolve().parents[1]  # .../promptmid
    for root in (here.parents[1], here.parents[0], here):  # repo root (core/..), bundle root, package
        cand = root / "resources" / "models" / filename
        if cand.is_file():
            return str(cand)
    return str(here.parents[1] / "resources" / "models" / filename)


def resolve_device(device: Optional[str]) -> str:
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _lite(weights: Optional[str] = None, device: Optional[str] = None, filename: str = LITE_FILENAME,
          name: str = "lite", **_: object) -> Describer:
    from ..models.checkpoint import load_checkpoint
    from ..models.network import PromptMIDNet
    from .learned import LearnedDescriber

    path = weights or shipped_checkpoint(filename)
    if not os.path.isfile(path):
        target = TRAIN_TARGET[filename]
        raise ModelMissingError(f"The {name} model is missing: {path}. Reinstall the plugin, run `make {target}`, "
                                "or choose the classical engine.")
    cfg, state, meta = load_checkpoint(path)
    net = PromptMIDNet(cfg)
    try:
        net.load_trainable(state)
    except KeyError as exc:
        raise ModelMissingError(f"{os.path.basename(path)} does not match its config: {exc}") from None
    describer = LearnedDescriber(net, name, resolve_device(device))
    if meta.get("verdict"):
        from ..verdict import model_verdict

        describer.verdict = model_verdict(meta["verdict"])
    return describer


def _full(model_dir: Optional[str] = None, device: Optional[str] = None, **_: object) -> Describer:
    from ..models.model_dir import build_full_network
    from .learned import LearnedDescriber

    dev = resolve_device(device)
    return LearnedDescriber(build_full_network(model_dir, device=dev), "promptmid", dev)


def _dense(**options: object) -> Describer:
    return _lite(**{**options, "filename": DENSE_FILENAME, "name": "dense"})


_FACTORIES: dict[str, Callable[..., Describer]] = {
    "default": _dense,  # DEFAULT_FILENAME
    "lite": _lite,
    "dense": _dense,
    "promptmid": _full,
    "classical": lambda **_: ClassicalDescriber(),
    "sift": lambda **_: _sift(),
    "area": lambda **_: AreaOnly(),
}


class AreaOnly:
    """The ``area`` engine: no descriptor, so guided matching uses dense templates alone."""

    name = "area"
    describe = None


def _sift() -> Describer:
    from .sift import SiftDescriber

    return SiftDescriber()


def available_engines() -> list[str]:
    return sorted(_FACTORIES)


def get_describer(name: str, **options: object) -> "Describer | AreaOnly":
    """Build the descriptor of engine ``name``; options: ``weights``, ``model_dir``, ``device``."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise InputError(f"Unknown engine '{name}'. Available engines: {', '.join(available_engines())}.") from None
    return factory(**options)
