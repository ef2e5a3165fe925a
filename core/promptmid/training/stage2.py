"""Stage 2: descriptor learning. The diffusion model (full profile) and DINOv2 stay frozen; the MSAA/CBAM
heads and the CNN encoders learn with InfoNCE between SAR points and the same points in an augmented
optical crop. AdamW, cosine learning-rate decay, checkpoints with resume, progress and cancel."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..config import EngineConfig
from ..descriptors.learned import LearnedDescriber, branch_input, branch_prior, sample_descriptors
from ..evaluation.protocol import ProtocolConfig, evaluate_pair
from ..io.atomic import atomic_path
from ..models.checkpoint import save_checkpoint
from ..dense.correlation import centred
from ..dense.learned import learned_map
from ..guided import warp_dense
from ..models.network import PromptMIDNet, map_stride, uses_prior
from ..models.prompts import land_use_index
from ..progress import Progress
from .data import AugmentConfig, CachedPair, Sample, load_pairs, make_sample, split_pairs
from .dense_data import DenseAugmentConfig, DenseSample, make_dense_sample
from .losses import correlation_loss, hard_negative_nce, info_nce
from .sample_stream import SampleStream, samples_from
from .steps import after_step


@dataclass
class Stage2Config:
    pairs_dir: str = ""
    out_path: str = "promptmid-lite.safetensors"
    steps: int = 3000
    batch: int = 2  # samples per optimiser step
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01  # paper
    temperature: float = 0.07
    neg_radius_px: float = 8.0  # points closer than this (SAR crop pixels) are not negatives of each other
    # Lite models with the classical prior: the weight of the prior's skip connection is chosen among these
    # on the validation split after training (best SR, then lowest median registration error).
    prior_skip_candidates: tuple = (0.0, 0.5, 0.7, 0.85)
    val_fraction: float = 0.1  # held out from pairs_dir by id hash (never the test split)
    val_limit: int = 24
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 1  # torch CPU threads: fixed, so runs reproduce (float reductions depend on the split)
    # Samples made in this many worker processes (sample_stream.py: for a GPU, whose step outruns one core's
    # sample making); 0 makes them in the training process, as the shipped recipes do.
    workers: int = 0
    device: str = "cpu"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # "points": InfoNCE over corresponding points (the paper's loss). "dense": for models whose maps drive
    # the search and templates: InfoNCE + same-image hard negatives + translation-correlation losses.
    objective: str = "points"
    dense_augment: DenseAugmentConfig = field(default_factory=DenseAugmentConfig)
    corr_weight: float = 1.0  # weight of the two correlation losses
    point_weight: float = 1.0  # weight of InfoNCE + hard negatives in the dense objective
    corr_temperature: float = 0.05
    global_radius_cells: int = 12  # shifts of the crop-wide correlation, in 2 px cells (+-24 px)
    local_template_px: int = 33  # the guided stage's template (GuidedConfig.template_px)
    local_radius_px: int = 8  # and its search radius
    local_templates: int = 16
    hard_negatives: int = 4  # per point, 4-32 px from it in the optical map


@dataclass
class TrainState:
    step: int = 0
    losses: list = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    seconds: float = 0.0
    samples: int = 0  # samples drawn (the position of a worker-made sample stream, for resuming)


def seed_everything(seed: int) -> None:
    """Seed every generator and ask torch for deterministic kernels; call it *before* building the network
    (its initial weights come from the same generator)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def sample_loss(net: PromptMIDNet, s: Sample, temperature: float, device: torch.device, neg_radius_px: float = 8.0) -> torch.Tensor:
    xs = branch_input(s.sar, net).to(device)
    xo = branch_input(s.optical, net).to(device)
    ps, po = branch_prior(s.sar, net), branch_prior(s.optical, net)
    cls = torch.tensor([land_use_index(s.land_use)], device=device)
    ds = net.sar(xs, [s.land_use], cls, ps.to(device) if ps is not None else None)
    do = net.optical(xo, po.to(device) if po is not None else None)
    st = map_stride(net.cfg)
    a = sample_descriptors(ds, torch.from_numpy(s.sar_points)[None].to(device), st)[0]
    b = sample_descriptors(do, torch.from_numpy(s.optical_points)[None].to(device), st)[0]
    pts = torch.from_numpy(s.sar_points).to(device)
    return info_nce(a, b, temperature, torch.cdist(pts, pts) < neg_radius_px)


def dense_sample_loss(net: PromptMIDNet, s: DenseSample, cfg: Stage2Config, device: torch.device,
                      rng: np.random.Generator) -> torch.Tensor:
    """Losses for dense use on one sample: the SAR map is warped into the optical frame by the known map
    (as the search warps it by a pose), then (1) crop-wide translation correlation on 2 px cells, (2) the
    guided stage's templates at 1 px, (3) InfoNCE over points and (4) same-image hard negatives."""
    xs, xo = branch_input(s.sar, net).to(device), branch_input(s.optical, net).to(device)
    cls = torch.tensor([land_use_index(s.land_use)], device=device)
    ds, do = net.sar(xs, [s.land_use], cls, None), net.optical(xo, None)
    st = map_stride(net.cfg)
    vo = torch.from_numpy(s.optical.valid).to(device)
    fo = learned_map(do, vo, net.cfg).features
    # the SAR map into the optical frame through the known map, exactly as the guided stage warps it
    fs_w, vs_w = warp_dense(learned_map(ds, torch.from_numpy(s.sar.valid).to(device), net.cfg), s.sar_to_optical, s.optical.shape)
    both = vs_w & vo
    # channel means removed over the common area, as the search does
    fs_w, fo = centred(fs_w, both), centred(fo, vo)

    r = cfg.global_radius_cells
    f2 = F.avg_pool2d(torch.stack([fs_w, fo]), 2)
    b2 = F.avg_pool2d(both[None, None].float(), 2)[0, 0] > 0.99
    glob = correlation_loss(f2[0][None, :, r:-r, r:-r], b2[None, r:-r, r:-r].float(), f2[1][None], cfg.corr_temperature)

    t2, lr_ = cfg.local_template_px // 2, cfg.local_radius_px
    m = t2 + lr_
    hh, ww = s.optical.shape
    q = np.round(s.optical_points).astype(int)
    ok = (q[:, 0] >= m) & (q[:, 0] < ww - m) & (q[:, 1] >= m) & (q[:, 1] < hh - m)
    losses = [glob]
    if ok.any():
        q = q[ok][rng.permutation(int(ok.sum()))[: cfg.local_templates]]
        tmpl = torch.stack([fs_w[:, y - t2:y + t2 + 1, x - t2:x + t2 + 1] for x, y in q])
        tmask = torch.stack([both[y - t2:y + t2 + 1, x - t2:x + t2 + 1] for x, y in q]).float()
        srch = torch.stack([fo[:, y - m:y + m + 1, x - m:x + m + 1] for x, y in q])
        losses.append(correlation_loss(tmpl, tmask, srch, cfg.corr_temperature))
    corr = torch.stack(losses).mean()

    sp, op = torch.from_numpy(s.sar_points).to(device), torch.from_numpy(s.optical_points).to(device)
    a = sample_descriptors(ds, sp[None], st)[0]
    b = sample_descriptors(do, op[None], st)[0]
    nce = info_nce(a, b, cfg.temperature, torch.cdist(sp, sp) < cfg.neg_radius_px)
    k = cfg.hard_negatives
    if k:
        ang = rng.uniform(0, 2 * np.pi, (len(op), k))
        dist = rng.uniform(4, 32, (len(op), k))
        off = torch.from_numpy(np.stack([np.cos(ang) * dist, np.sin(ang) * dist], -1).astype(np.float32)).to(device)
        neg = (op[:, None] + off).clamp(0, min(hh, ww) - 1).reshape(1, -1, 2)
        nce = nce + hard_negative_nce(a, b, sample_descriptors(do, neg, st)[0].reshape(len(op), k, -1), cfg.temperature)
    return cfg.point_weight * nce + cfg.corr_weight * corr


def checkpoint_dir(out_path: str) -> str:
    """Where an unfinished run keeps its checkpoints: beside, never in place of, the model it will write
    (an interrupted run must not replace a shipped model)."""
    return os.path.splitext(out_path)[0] + ".training"


def _state_path(out_path: str) -> str:
    return os.path.join(checkpoint_dir(out_path), "state.pt")


def _run_key(cfg: "Stage2Config") -> dict:
    """What must match for a saved state to be resumed (anything else is a different run)."""
    d = asdict(cfg)
    keys = ("pairs_dir", "steps", "batch", "lr", "seed", "temperature", "augment", "objective", "dense_augment", "corr_weight", "point_weight",
            "val_fraction", "workers")
    return {k: d[k] for k in keys if k in d}


def sample_maker(cfg: Stage2Config) -> Callable[[CachedPair, np.random.Generator], Optional[Sample | DenseSample]]:
    """``make(pair, rng)``: one training sample of the objective, or None when the draw gave nothing usable."""
    if cfg.objective == "dense":
        return lambda pair, rng: make_dense_sample(pair, rng, cfg.dense_augment)
    return lambda pair, rng: make_sample(pair, rng, cfg.augment)


def _loss_of(net: PromptMIDNet, sample: Sample | DenseSample, rng: np.random.Generator, cfg: Stage2Config,
             device: torch.device) -> torch.Tensor:
    if cfg.objective == "dense":
        return dense_sample_loss(net, sample, cfg, device, rng)
    return sample_loss(net, sample, cfg.temperature, device, cfg.neg_radius_px)


def validate(net: PromptMIDNet, pairs_dir: str, ids: list[str], engine_cfg: EngineConfig, device: str) -> dict:
    """SR / NCM / registration error on held-out training pairs with the evaluation harness."""
    if not ids:
        return {}
    describer = LearnedDescriber(net, "validation", device)
    res = [evaluate_pair(os.path.join(pairs_dir, pid), describer, engine_cfg, ProtocolConfig(), np.random.default_rng([7, i]))
           for i, pid in enumerate(ids)]
    net.train()
    errs = np.array([r.reg_err_px for r in res])
    return {"pairs": len(res), "sr": 100.0 * np.mean([r.success for r in res]),
            "ncm": float(np.mean([r.ncm for r in res if r.success])) if any(r.success for r in res) else 0.0,
            "reg_err_median_px": float(np.median(errs)) if np.isfinite(np.median(errs)) else None}


def select_prior_skip(net: PromptMIDNet, cfg: Stage2Config, val_ids: list[str], engine_cfg: EngineConfig,
                      log: Callable[[str], None]) -> dict:
    """Set ``net.cfg.prior_skip`` to the candidate with the best validation SR (ties: median error)."""
    scores = {}
    for w in cfg.prior_skip_candidates:
        net.cfg.prior_skip = float(w)
        scores[w] = validate(net, cfg.pairs_dir, val_ids, engine_cfg, cfg.device)
        log(f"prior_skip {w}: {json.dumps(scores[w])}")
    best = max(scores, key=lambda w: (scores[w]["sr"], -(scores[w]["reg_err_median_px"] or float("inf"))))
    net.cfg.prior_skip = float(best)
    return {**scores[best], "prior_skip": float(best), "prior_skip_candidates": {str(k): v for k, v in scores.items()}}


def train_stage2(net: PromptMIDNet, cfg: Stage2Config, engine_cfg: Optional[EngineConfig] = None,
                 progress: Optional[Progress] = None, resume: bool = True,
                 pairs: Optional[list[CachedPair]] = None, log: Optional[Callable[[str], None]] = None) -> TrainState:
    """Train ``net`` in place; writes ``cfg.out_path`` (+ .json) at checkpoints and at the end."""
    engine_cfg = engine_cfg or EngineConfig()
    progress = progress or Progress()
    log = log or (lambda _m: None)
    seed_everything(cfg.seed)  # again: the data order and augmentation draw from it too
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    net.to(device).train()
    # Pairs prepared elsewhere with no folder to read (a packed set on a GPU machine): nothing to validate on.
    train_ids, val_ids = split_pairs(cfg.pairs_dir, cfg.val_fraction) if cfg.pairs_dir else ([p.pair_id for p in pairs or []], [])
    if pairs is None:
        pairs = load_pairs(cfg.pairs_dir, train_ids, engine_cfg, progress.sub(0.0, 0.1))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    state = TrainState()
    state_path = _state_path(cfg.out_path)
    saved = torch.load(state_path, map_location=device, weights_only=False) if resume and os.path.isfile(state_path) else None
    if saved is not None and saved.get("run") != json.loads(json.dumps(_run_key(cfg))):
        log(f"ignoring {state_path}: it belongs to a run with other settings")
        saved = None
    if saved is not None:
        net.load_trainable(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        state = TrainState(**saved["state"])
        rng = np.random.default_rng()
        rng.bit_generator.state = saved["rng"]
        log(f"resumed at step {state.step}")
    else:
        rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter() - state.seconds
    train_progress = progress.sub(0.1, 0.95)

    def checkpoint(final: bool = False) -> None:
        state.seconds = time.perf_counter() - t0
        meta = {"stage": 2, "step": state.step, "train": asdict(cfg), "seconds": state.seconds,
                "final_loss": float(np.mean(state.losses[-50:])) if state.losses else None,
                "validation": state.validation, "train_pairs": len(pairs), "validation_pairs": val_ids}
        if final:  # the only write of the output model
            save_checkpoint(cfg.out_path, net, meta)
            return
        os.makedirs(checkpoint_dir(cfg.out_path), exist_ok=True)
        save_checkpoint(os.path.join(checkpoint_dir(cfg.out_path), "model.safetensors"), net, meta)
        with atomic_path(state_path) as tmp:
            torch.save({"model": net.trainable_state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "state": asdict(state), "rng": rng.bit_generator.state,
                        "run": json.loads(json.dumps(_run_key(cfg)))}, tmp)

    with contextlib.ExitStack() as stack:
        if cfg.workers > 0:
            samples = iter(stack.enter_context(SampleStream(sample_maker(cfg), pairs, cfg.seed, cfg.workers, state.samples)))
        else:
            samples = samples_from(sample_maker(cfg), pairs, rng)
        while state.step < cfg.steps:
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(cfg.batch):
                sample, sample_rng = next(samples)
                state.samples += 1
                loss = _loss_of(net, sample, sample_rng, cfg, device) / cfg.batch
                loss.backward()
                total += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            state.step += 1
            state.losses.append(total)
            after_step(state.step, cfg.steps, 50,
                       lambda: f"step {state.step}/{cfg.steps} loss {np.mean(state.losses[-50:]):.3f} lr {sched.get_last_lr()[0]:.2e}",
                       log, train_progress, cfg.checkpoint_every, checkpoint)
    progress.report(0.95, "validation")
    val = val_ids[: cfg.val_limit]
    if uses_prior(net.cfg) and val and cfg.prior_skip_candidates:
        state.validation = select_prior_skip(net, cfg, val, engine_cfg, log)
    else:
        state.validation = validate(net, cfg.pairs_dir, val, engine_cfg, cfg.device)
    log(f"validation: {json.dumps(state.validation)}")
    checkpoint(final=True)
    shutil.rmtree(checkpoint_dir(cfg.out_path), ignore_errors=True)  # finished: nothing left to resume
    progress.report(1.0, "done")
    return state
