"""Model directories with random weights in the standard layout (see :mod:`.model_dir`), at tiny or real size.

The tests write a tiny one, ``scripts/full_size_check.py`` a real-size one from the published configurations
(SD 1.5, CLIP ViT-L/14 text encoder, DINOv2-base, VGG19), so both run the user's loading code
(``from_pretrained``, a torchvision-keyed VGG19 state dict) on files saved by each library's own
``save_pretrained``. Nothing is downloaded: the CLIP tokenizer is generated (byte-level vocabulary plus
letter-pair merges up to the wanted size).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from .vgg import VGG19_LAYERS, Layer

SD_DOWN = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
SD_UP = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
TINY_VGG: list[Layer] = [8, 8, "M", 16, 16, "M", 16, 16, 16, 16, "M", 16, 16, 16, 16, "M"]  # VGG19 indices, tiny widths


@dataclass(frozen=True)
class RandomModelSpec:
    """Constructor arguments of each component. ``text`` without ``vocab_size`` takes the tokenizer's size
    and special ids; ``vgg_extra`` are zero tensors saved beside ``features.*`` (the classifier of a
    torchvision file: unused by the engine but loaded with it)."""

    unet: dict
    vae: dict
    text: dict
    dino: dict
    vgg_layers: list
    controlnet: dict = field(default_factory=dict)  # ControlNetModel.from_unet keyword arguments
    vgg_extra: dict = field(default_factory=dict)  # key -> shape
    tokenizer_merges: int = 0
    scheduler: str = "ddpm"  # "ddpm" (DDPMScheduler defaults) or "sd15" (SD 1.5's PNDM scheduler config)


TINY = RandomModelSpec(
    unet=dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 16, 32, 32),
              down_block_types=SD_DOWN, up_block_types=SD_UP, cross_attention_dim=16, attention_head_dim=4,
              norm_num_groups=8),
    vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
             up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), latent_channels=4,
             norm_num_groups=8, layers_per_block=1),
    text=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=77),
    dino=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, patch_size=14, image_size=56),
    vgg_layers=list(TINY_VGG),
    controlnet=dict(conditioning_embedding_out_channels=(8, 8, 16, 16)),
    vgg_extra={"classifier.0.weight": (2, 2)},
)

# The published configurations: stable-diffusion-v1-5 unet/, vae/, text_encoder/ (openai/clip-vit-large-patch14's
# text tower), facebook/dinov2-base, torchvision vgg19 (features + classifier).
SD15 = RandomModelSpec(
    unet=dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
              down_block_types=SD_DOWN, up_block_types=SD_UP, cross_attention_dim=768, attention_head_dim=8,
              norm_num_groups=32),
    vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
             up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), latent_channels=4,
             norm_num_groups=32, layers_per_block=2, sample_size=512),
    text=dict(vocab_size=49408, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
              max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu", bos_token_id=0, eos_token_id=2,
              pad_token_id=1),
    dino=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, mlp_ratio=4, patch_size=14, image_size=518,
              layerscale_value=1.0),
    vgg_layers=list(VGG19_LAYERS),
    vgg_extra={"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,), "classifier.3.weight": (4096, 4096),
               "classifier.3.bias": (4096,), "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)},
    tokenizer_merges=48894,  # 256 bytes x 2 (+ "</w>") + 48894 merges + 2 special tokens = CLIP's 49408
    scheduler="sd15",
)


def write_tokenizer(path: str, n_merges: int = 0) -> None:
    """A CLIP tokenizer folder without a download: the byte-level alphabet (with and without ``</w>``), then
    ``n_merges`` merges of character pairs (letters first), then ``<|startoftext|>`` and ``<|endoftext|>``."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    order = sorted(chars, key=lambda c: (not c.isalpha(), not c.islower(), c))
    pairs = ((a, b + tail) for a in order for b in order for tail in ("", "</w>"))
    merges = [f"{a} {b}" for a, b in itertools.islice(pairs, n_merges)]
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.json"), "w") as fh:
        json.dump(vocab, fh)
    with open(os.path.join(path, "merges.txt"), "w") as fh:
        fh.write("#version: 0.2\n" + "".join(m + "\n" for m in merges))
    tok = CLIPTokenizer(os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt"), model_max_length=77)
    tok.save_pretrained(path)


def _scheduler(kind: str):
    from diffusers import DDPMScheduler, PNDMScheduler

    if kind == "sd15":
        return PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                             set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)
    return DDPMScheduler(num_train_timesteps=1000)


def write_random_model_dir(root: str, spec: RandomModelSpec = TINY, with_controlnet: bool = True, seed: int = 0,
                           log: Optional[Callable[[str], None]] = None) -> str:
    """Write every component of ``spec`` with random weights (torch seeded with ``seed``) under ``root``.

    Models are freed as soon as they are saved, so the real-size directory (about 6.6 GB) is written with
    the UNet and its ControlNet copy as the largest things in memory.
    """
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, Dinov2Config, Dinov2Model

    from .vgg import VGGFeatures

    say = log or (lambda _m: None)
    torch.manual_seed(seed)
    sd = os.path.join(root, "stable-diffusion-v1-5")
    say("unet")
    unet = UNet2DConditionModel(**spec.unet)
    unet.save_pretrained(os.path.join(sd, "unet"))
    say("vae")
    AutoencoderKL(**spec.vae).save_pretrained(os.path.join(sd, "vae"))
    say("tokenizer")
    write_tokenizer(os.path.join(sd, "tokenizer"), spec.tokenizer_merges)
    say("text_encoder")
    text = dict(spec.text)
    if "vocab_size" not in text:
        n = len(CLIPTokenizer.from_pretrained(os.path.join(sd, "tokenizer")))
        text.update(vocab_size=n, bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1)
    CLIPTextModel(CLIPTextConfig(**text)).save_pretrained(os.path.join(sd, "text_encoder"))
    _scheduler(spec.scheduler).save_pretrained(os.path.join(sd, "scheduler"))
    if with_controlnet:
        say("controlnet")
        ControlNetModel.from_unet(unet, **spec.controlnet).save_pretrained(os.path.join(root, "controlnet-sar"))
    del unet
    say("dinov2")
    Dinov2Model(Dinov2Config(**spec.dino)).save_pretrained(os.path.join(root, "dinov2"))
    say("vgg19")
    vgg = VGGFeatures(spec.vgg_layers, [len(spec.vgg_layers) * 2 - 1], 3)  # tap past the end: every layer kept
    extra = {k: torch.zeros(shape) for k, shape in spec.vgg_extra.items()}
    torch.save({**vgg.state_dict(), **extra}, os.path.join(root, "vgg19.pth"))
    return root
