"""Stage 1: fine-tune the SAR ControlNet (diffusers' ControlNet recipe).

Condition: the SAR image in [0, 1] (3 channels); target: the co-registered optical image in [-1, 1];
text: the land-use prompt, replaced by the empty prompt with probability ``empty_prompt_prob``.
SD 1.5 (VAE, UNet, text encoder) stays frozen; only the ControlNet learns, with epsilon-prediction MSE
at uniformly drawn timesteps. Checkpoints are diffusers folders (``save_pretrained``) plus a state file
for resume.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..config import EngineConfig
from ..models.prompts import DEFAULT_TEMPLATE, prompt_text
from ..progress import Progress
from .data import load_pairs, split_pairs
from .stage2 import seed_everything
from .steps import after_step


@dataclass
class Stage1Config:
    pairs_dir: str = ""
    out_dir: str = "controlnet-sar"
    steps: int = 1000
    batch: int = 2  # paper
    lr: float = 1e-5
    weight_decay: float = 0.01  # paper
    resolution: int = 512  # crop side, pixels of the work grid; a multiple of 64 for SD 1.5
    empty_prompt_prob: float = 0.1
    prompt_template: str = DEFAULT_TEMPLATE
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"


@dataclass
class Stage1State:
    step: int = 0
    losses: list = field(default_factory=list)
    seconds: float = 0.0


def _crop_batch(pairs, rng: np.random.Generator, cfg: Stage1Config) -> tuple[torch.Tensor, torch.Tensor, list]:
    conds, targets, lus = [], [], []
    for _ in range(cfg.batch):
        p = pairs[int(rng.integers(len(pairs)))]
        h, w = p.sar.shape
        c = min(cfg.resolution, h, w)
        y0, x0 = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        sl = (slice(y0, y0 + c), slice(x0, x0 + c))
        sar = torch.from_numpy(p.sar.gray[sl])[None].repeat(3, 1, 1)
        rgb = p.optical.color if p.optical.color is not None else np.stack([p.optical.gray] * 3)
        opt = torch.from_numpy(np.ascontiguousarray(rgb[(slice(None),) + sl]))
        size = cfg.resolution  # resample to the training resolution (tiles smaller than it are upsampled)
        conds.append(F.interpolate(sar[None], size=(size, size), mode="bilinear", align_corners=False)[0])
        targets.append(F.interpolate(opt[None], size=(size, size), mode="bilinear", align_corners=False)[0] * 2 - 1)
        lus.append(p.sar.land_use)
    return torch.stack(conds), torch.stack(targets), lus


def train_stage1(components: dict, cfg: Stage1Config, engine_cfg: Optional[EngineConfig] = None,
                 progress: Optional[Progress] = None, resume: bool = True, pairs=None,
                 log: Optional[Callable[[str], None]] = None) -> Stage1State:
    engine_cfg = engine_cfg or EngineConfig()
    progress = progress or Progress()
    log = log or (lambda _m: None)
    seed_everything(cfg.seed)
    device = torch.device(cfg.device)
    vae, unet, text_encoder = components["vae"], components["unet"], components["text_encoder"]
    controlnet, tokenizer, scheduler = components["controlnet"], components["tokenizer"], components["scheduler"]
    for m in (vae, unet, text_encoder):
        m.to(device).eval().requires_grad_(False)
    controlnet.to(device).train().requires_grad_(True)
    if pairs is None:
        train_ids, _ = split_pairs(cfg.pairs_dir, 0.1)
        pairs = load_pairs(cfg.pairs_dir, train_ids, engine_cfg, progress.sub(0.0, 0.1))
    opt = torch.optim.AdamW(controlnet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state, rng = Stage1State(), np.random.default_rng(cfg.seed)
    state_file = os.path.join(cfg.out_dir, "train-state.pt")
    if resume and os.path.isfile(state_file):
        saved = torch.load(state_file, map_location=device, weights_only=False)
        controlnet.load_state_dict(saved["controlnet"])
        opt.load_state_dict(saved["optimizer"])
        state = Stage1State(**saved["state"])
        rng.bit_generator.state = saved["rng"]
        log(f"resumed at step {state.step}")
    prompt_cache: dict[str, torch.Tensor] = {}

    def embed(text: str) -> torch.Tensor:
        if text not in prompt_cache:
            ids = tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
            with torch.no_grad():
                prompt_cache[text] = text_encoder(ids.to(device))[0]
        return prompt_cache[text]

    def checkpoint(final: bool) -> None:
        os.makedirs(cfg.out_dir, exist_ok=True)
        controlnet.save_pretrained(cfg.out_dir)
        if not final:
            torch.save({"controlnet": controlnet.state_dict(), "optimizer": opt.state_dict(), "state": asdict(state),
                        "rng": rng.bit_generator.state}, state_file)
        elif os.path.isfile(state_file):
            os.remove(state_file)

    t0 = time.perf_counter() - state.seconds
    sub = progress.sub(0.1, 0.98)
    while state.step < cfg.steps:
        cond, target, lus = _crop_batch(pairs, rng, cfg)
        cond, target = cond.to(device), target.to(device)
        with torch.no_grad():
            latents = vae.encode(target).latent_dist.sample() * vae.config.scaling_factor
        noise = torch.randn_like(latents)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), device=device)
        noisy = scheduler.add_noise(latents, noise, t)
        texts = ["" if rng.random() < cfg.empty_prompt_prob else prompt_text(lu, cfg.prompt_template) for lu in lus]
        emb = torch.cat([embed(x) for x in texts])
        down, mid = controlnet(noisy, t, encoder_hidden_states=emb, controlnet_cond=cond, return_dict=False)
        pred = unet(noisy, t, encoder_hidden_states=emb, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid).sample
        loss = F.mse_loss(pred.float(), noise.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(controlnet.parameters(), 1.0)
        opt.step()
        state.step += 1
        state.losses.append(float(loss.detach()))
        state.seconds = time.perf_counter() - t0
        after_step(state.step, cfg.steps, 10, lambda: f"step {state.step}/{cfg.steps} loss {np.mean(state.losses[-10:]):.4f}",
                   log, sub, cfg.checkpoint_every, lambda: checkpoint(final=False))
    checkpoint(final=True)
    progress.report(1.0, "done")
    return state


def stage1_components(model_dir: Optional[str], out: Optional[str]) -> tuple[str, dict]:
    """(ControlNet output folder, SD 1.5 components + ControlNet) for stage 1; a clear error without SD."""
    from ..errors import ModelMissingError
    from ..models.model_dir import check_model_dir, load_sd_components, resolve_model_dir

    root = resolve_model_dir(model_dir)
    sd = next(s for s in check_model_dir(root) if s.component.key == "stable_diffusion")
    if not sd.present:
        raise ModelMissingError(f"Stage 1 needs Stable Diffusion 1.5 at {sd.path} ({sd.problem}).")
    out = out or os.path.join(root, "controlnet-sar")
    # Training in fp32 (CPU, and stable on GPU without a grad scaler); resumes from `out` if it holds a ControlNet.
    return out, load_sd_components(root, torch.float32, out)


def run_stage1_cli(args: argparse.Namespace, progress: Progress) -> int:
    out, comps = stage1_components(args.model_dir, args.out)
    cfg = Stage1Config(pairs_dir=args.pairs_dir, out_dir=out, steps=args.steps, batch=args.batch, lr=args.lr,
                       resolution=args.resolution, seed=args.seed, device=args.device)
    state = train_stage1(comps, cfg, progress=progress, resume=not args.no_resume, log=lambda m: None)
    print(f"ControlNet trained {state.step} steps in {state.seconds / 60:.1f} min; saved to {out}")
    return 0
