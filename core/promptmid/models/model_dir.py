"""The model directory: where foundation weights live, what is missing, how to load and fetch them.

Layout (standard formats, so public downloads drop in unchanged)::

    MODEL_DIR/
      stable-diffusion-v1-5/      diffusers pipeline folder: vae/ unet/ text_encoder/ tokenizer/ scheduler/
      controlnet-sar/             diffusers ControlNetModel folder (stage-1 output); optional: initialised
                                  from the SD UNet when absent (then train stage 1 before relying on it)
      dinov2/                     transformers Dinov2Model folder (e.g. facebook/dinov2-base)
      vgg19.pth                   torchvision VGG19 ImageNet state dict (vgg19-dcbb9e9d.pth)
      promptmid-full.safetensors  trained heads + fine VGG (stage 2), with promptmid-full.json

The directory comes from the plugin setting, the CLI flag ``--model-dir`` or ``$PROMPTMID_MODEL_DIR``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import ModelMissingError

ENV_VAR = "PROMPTMID_MODEL_DIR"
SD_SUBFOLDERS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")


@dataclass(frozen=True)
class Component:
    key: str
    relpath: str
    required: bool  # for the full engine
    source: str  # where to get it
    describe: str

    def path(self, root: str) -> str:
        return os.path.join(root, self.relpath)


COMPONENTS = (
    Component("stable_diffusion", "stable-diffusion-v1-5", True, "hf:stable-diffusion-v1-5/stable-diffusion-v1-5",
              "Stable Diffusion 1.5 (diffusers folder with vae/, unet/, text_encoder/, tokenizer/, scheduler/)"),
    Component("controlnet", "controlnet-sar", False, "stage 1: promptmid train controlnet",
              "SAR ControlNet (diffusers folder); without it a ControlNet is initialised from the SD UNet"),
    Component("dinov2", "dinov2", True, "hf:facebook/dinov2-base", "DINOv2 (transformers folder)"),
    Component("vgg19", "vgg19.pth", True, "url:https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
              "VGG19 ImageNet weights (torchvision state dict)"),
    Component("heads", "promptmid-full.safetensors", False, "stage 2: promptmid train descriptor --profile full",
              "trained PromptMID heads (safetensors + .json); without them descriptors are untrained"),
)


@dataclass
class ComponentStatus:
    component: Component
    path: str
    present: bool
    problem: str = ""


def resolve_model_dir(model_dir: Optional[str]) -> str:
    path = model_dir or os.environ.get(ENV_VAR, "")
    if not path:
        raise ModelMissingError(
            f"No model directory set: pass --model-dir, set ${ENV_VAR}, or choose one in the plugin settings. "
            "Use the default engine to register without foundation weights.")
    return os.path.abspath(os.path.expanduser(path))


def _check(c: Component, root: str) -> ComponentStatus:
    p = c.path(root)
    if c.key == "stable_diffusion":
        missing = [s for s in SD_SUBFOLDERS if not os.path.isdir(os.path.join(p, s))]
        if not os.path.isdir(p):
            return ComponentStatus(c, p, False, "folder missing")
        if missing:
            return ComponentStatus(c, p, False, "missing sub-folders: " + ", ".join(missing))
        return ComponentStatus(c, p, True)
    if c.key in ("controlnet", "dinov2"):
        ok = os.path.isfile(os.path.join(p, "config.json"))
        return ComponentStatus(c, p, ok, "" if ok else "config.json not found")
    if c.key == "heads":
        ok = os.path.isfile(p) and os.path.isfile(os.path.splitext(p)[0] + ".json")
        return ComponentStatus(c, p, ok, "" if ok else "file (or its .json) not found")
    ok = os.path.isfile(p)
    return ComponentStatus(c, p, ok, "" if ok else "file not found")


def check_model_dir(model_dir: str) -> list[ComponentStatus]:
    return [_check(c, model_dir) for c in COMPONENTS]


def format_check(statuses: list[ComponentStatus]) -> str:
    lines = []
    for s in statuses:
        mark = "ok     " if s.present else ("MISSING" if s.component.required else "absent ")
        lines.append(f"{mark} {s.component.key:16s} {s.path}" + (f"  ({s.problem}; get it from {s.component.source})" if not s.present else ""))
    return "\n".join(lines)


def require_full(model_dir: Optional[str]) -> tuple[str, list[ComponentStatus]]:
    root = resolve_model_dir(model_dir)
    statuses = check_model_dir(root)
    missing = [s for s in statuses if s.component.required and not s.present]
    if missing:
        names = "; ".join(f"{s.component.describe} at {s.path}" for s in missing)
        raise ModelMissingError(f"The full PromptMID engine needs: {names}. Run `promptmid models download --model-dir {root}` "
                                "on a machine with internet, or use the default engine.")
    return root, statuses


def build_full_network(model_dir: Optional[str], cfg=None, device: str = "cpu", with_heads: bool = True):
    """The full PromptMID network from a model directory (diffusers/transformers ``from_pretrained`` and a
    torchvision VGG19 state dict). fp16 on CUDA, fp32 on CPU."""
    import torch

    from .checkpoint import load_checkpoint
    from .diffusion import DiffusionFeatures
    from .dinov2 import DinoFeatures
    from .network import Foundation, ModelConfig, PromptMIDNet

    root, statuses = require_full(model_dir)
    status = {s.component.key: s for s in statuses}
    state = None
    if with_heads and status["heads"].present:
        cfg, state, _ = load_checkpoint(status["heads"].path)
    dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    try:
        vgg_state = torch.load(status["vgg19"].path, map_location="cpu", weights_only=True)
        if cfg is None:
            from .vgg import layers_from_state_dict

            cfg = ModelConfig(profile="full", vgg_layers=layers_from_state_dict(vgg_state))
        foundation = Foundation(vgg_state=vgg_state)
        if cfg.use_diffusion:
            foundation.diffusion = load_diffusion(root, status["controlnet"], cfg, dtype)
        if cfg.use_dinov2:
            foundation.dino = DinoFeatures.from_pretrained(status["dinov2"].path, dtype)
    except ModelMissingError:
        raise
    except Exception as exc:  # corrupt or incompatible files: name the directory, not a stack trace
        raise ModelMissingError(f"Foundation weights in {root} could not be loaded ({type(exc).__name__}: {str(exc)[:200]}).") from None
    net = PromptMIDNet(cfg, foundation)
    if state is not None:
        net.load_trainable(state)
    return net.to(device)


def load_sd_components(root: str, dtype, controlnet_path: Optional[str] = None) -> dict:
    """SD 1.5 parts + the SAR ControlNet (from ``controlnet_path`` if it holds one, else copied from the UNet)."""
    from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    sd = os.path.join(root, "stable-diffusion-v1-5")
    unet = UNet2DConditionModel.from_pretrained(sd, subfolder="unet", torch_dtype=dtype)
    if controlnet_path and os.path.isfile(os.path.join(controlnet_path, "config.json")):
        controlnet = ControlNetModel.from_pretrained(controlnet_path, torch_dtype=dtype)
    else:
        controlnet = ControlNetModel.from_unet(unet).to(dtype)
    return dict(
        vae=AutoencoderKL.from_pretrained(sd, subfolder="vae", torch_dtype=dtype),
        unet=unet,
        controlnet=controlnet,
        text_encoder=CLIPTextModel.from_pretrained(sd, subfolder="text_encoder", torch_dtype=dtype),
        tokenizer=CLIPTokenizer.from_pretrained(sd, subfolder="tokenizer"),
        scheduler=DDPMScheduler.from_pretrained(sd, subfolder="scheduler"),
    )


def load_diffusion(root: str, controlnet_status: ComponentStatus, cfg, dtype):
    from .diffusion import DiffusionFeatures

    return DiffusionFeatures(**load_sd_components(root, dtype, controlnet_status.path), cfg=cfg.diffusion)


Fetcher = Callable[[str, str], None]  # (source spec, destination path)


def hub_fetch(source: str, dest: str) -> None:
    """Default fetcher: Hugging Face repos via huggingface_hub, plain URLs via urllib."""
    if source.startswith("hf:"):
        from huggingface_hub import snapshot_download

        repo = source[3:]
        patterns = None
        if "stable-diffusion" in repo:
            patterns = [f"{s}/*" for s in SD_SUBFOLDERS] + ["model_index.json"]
        snapshot_download(repo_id=repo, local_dir=dest, allow_patterns=patterns)
    elif source.startswith("url:"):
        import urllib.request

        tmp = dest + ".part"
        urllib.request.urlretrieve(source[4:], tmp)
        os.replace(tmp, dest)
    else:
        raise ValueError(f"no download for {source}")


def download_models(model_dir: str, fetch: Fetcher = hub_fetch, log: Callable[[str], None] = print) -> list[ComponentStatus]:
    """Fetch every missing downloadable component (those with an hf: or url: source)."""
    os.makedirs(model_dir, exist_ok=True)
    for s in check_model_dir(model_dir):
        c = s.component
        if s.present or not c.source.startswith(("hf:", "url:")):
            continue
        log(f"fetching {c.key} from {c.source}")
        try:
            fetch(c.source, s.path)
        except Exception as exc:  # network/auth failures: say which component and why
            if os.path.isdir(s.path) and not os.listdir(s.path):
                shutil.rmtree(s.path, ignore_errors=True)
            raise ModelMissingError(f"Download of {c.key} ({c.source}) failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    return check_model_dir(model_dir)
