"""SAR features from the UNet decoder of Stable Diffusion 1.5 + a SAR ControlNet (DIFT-style reading).

The SAR image conditions the ControlNet and the land-use prompt conditions both networks through the
CLIP text encoder. One denoising pass at a small timestep t over a noised VAE latent of the SAR image
gives decoder activations (``unet.up_blocks``, read with forward hooks) that carry the optical-like
structure the ControlNet learned to generate; several noise draws are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .prompts import DEFAULT_TEMPLATE, prompt_text


@dataclass
class DiffusionFeatureConfig:
    timestep: int = 261  # DIFT's choice for semantic correspondence with SD 2.1; small t keeps geometry
    blocks: tuple[int, ...] = (1, 2, 3)  # up_blocks read: strides 16, 8, 8 of the image for SD 1.5
    ensemble: int = 2  # noise draws averaged
    prompt_template: str = DEFAULT_TEMPLATE
    seed: int = 0


class DiffusionFeatures(nn.Module):
    def __init__(self, vae: nn.Module, unet: nn.Module, controlnet: nn.Module, text_encoder: nn.Module, tokenizer,
                 scheduler, cfg: Optional[DiffusionFeatureConfig] = None) -> None:
        super().__init__()
        self.cfg = cfg or DiffusionFeatureConfig()
        self.vae, self.unet, self.controlnet, self.text_encoder = vae, unet, controlnet, text_encoder
        self.tokenizer, self.scheduler = tokenizer, scheduler
        # Feature extraction (and stage 2) keeps the whole diffusion model frozen, the ControlNet included;
        # stage 1 trains the ControlNet through its own loop.
        for m in (self.vae, self.unet, self.text_encoder, self.controlnet):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
        self._prompt_cache: dict[str, torch.Tensor] = {}
        self._features: dict[int, torch.Tensor] = {}
        for i in self.cfg.blocks:
            self.unet.up_blocks[i].register_forward_hook(self._hook(i))
        self.out_channels = [self._block_channels(i) for i in self.cfg.blocks]
        ups = len(unet.config.block_out_channels) - 1
        self.latent_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.multiple = self.latent_factor * 2 ** ups  # image side must divide by this
        # up_blocks[i] upsamples at its end: outputs at latent / 2**(ups-1-i) -> image strides 32, 16, 8, 8 (SD 1.5)
        self.strides = [self.latent_factor * 2 ** max(ups - 1 - i, 0) for i in self.cfg.blocks]

    def _block_channels(self, i: int) -> int:
        rev = list(reversed(self.unet.config.block_out_channels))
        return int(rev[i])

    def _hook(self, i: int):
        def fn(_module, _inputs, output):
            self._features[i] = output[0] if isinstance(output, tuple) else output
        return fn

    @torch.no_grad()
    def prompt_embedding(self, land_use: Optional[str]) -> torch.Tensor:
        text = prompt_text(land_use, self.cfg.prompt_template)
        if text not in self._prompt_cache:
            ids = self.tokenizer(text, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids
            device = next(self.text_encoder.parameters()).device
            self._prompt_cache[text] = self.text_encoder(ids.to(device))[0]
        return self._prompt_cache[text]

    def forward(self, sar: torch.Tensor, land_use: Sequence[Optional[str]]) -> list[torch.Tensor]:
        """SAR (B, 1, H, W) in [0, 1] -> decoder feature maps (shallow/coarse first), float32.

        H and W are padded to a multiple of ``self.multiple``; callers resample the maps to their grid.
        """
        b, _, h, w = sar.shape
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        x = F.pad(sar, (0, pw, 0, ph), mode="replicate") if (ph or pw) else sar
        dtype = next(self.unet.parameters()).dtype
        cond = x.repeat(1, 3, 1, 1).to(dtype)
        with torch.no_grad():
            latents = self.vae.encode(cond * 2 - 1).latent_dist.mean * self.vae.config.scaling_factor
            text = torch.cat([self.prompt_embedding(lu) for lu in land_use]).to(dtype)
        t = torch.full((b,), self.cfg.timestep, device=sar.device, dtype=torch.long)
        gen = torch.Generator(device="cpu").manual_seed(self.cfg.seed)
        acc: list[torch.Tensor] = []
        for k in range(self.cfg.ensemble):
            noise = torch.randn(latents.shape, generator=gen).to(latents.device, dtype)
            noisy = self.scheduler.add_noise(latents, noise, t)
            with torch.no_grad():
                down, mid = self.controlnet(noisy, t, encoder_hidden_states=text, controlnet_cond=cond, return_dict=False)
                self.unet(noisy, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                          mid_block_additional_residual=mid)
            feats = [self._features[i].float() for i in self.cfg.blocks]
            acc = feats if k == 0 else [a + f for a, f in zip(acc, feats)]
        out = [a / self.cfg.ensemble for a in acc]
        if ph or pw:  # crop to the cells covering the unpadded image
            out = [f[:, :, : max(1, -(-h // s)), : max(1, -(-w // s))] for f, s in zip(out, self.strides)]
        return out
