"""``promptmid train ...``: builds the model for the chosen profile and runs a training stage."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from ..config import EngineConfig
from ..progress import Progress
from .data import AugmentConfig


def stage2_network(profile: str, model_dir: Optional[str], device: str, objective: str = "points", size: str = "small",
                   dense_maps: str = "residual"):
    """The untrained network stage 2 starts from: the full model from the model directory (its config
    follows the weights there), or a fresh lite model (for dense use: ``dense_config(size)``)."""
    if profile == "full":
        from ..models.model_dir import build_full_network

        return build_full_network(model_dir, None, device, with_heads=False)
    from ..models.network import ModelConfig, PromptMIDNet, dense_config

    if objective == "dense":
        return PromptMIDNet(dense_config(size, residual=dense_maps == "residual"))
    return PromptMIDNet(ModelConfig(profile="lite", out_stride=4, prior_passthrough=True))


def run_train(args: argparse.Namespace, progress: Progress) -> int:
    from ..descriptors.registry import resolve_device
    from .model_card import write_model_card
    from .stage2 import Stage2Config, train_stage2

    args.device = resolve_device(args.device)
    if args.stage != "descriptor":
        from .stage1 import run_stage1_cli

        return run_stage1_cli(args, progress)
    from .stage2 import seed_everything

    seed_everything(args.seed)  # before the network is built: its initial weights are part of the recipe
    net = stage2_network(args.profile, args.model_dir, args.device, args.objective, args.size, args.dense_maps)
    cfg = Stage2Config(pairs_dir=args.pairs_dir, out_path=args.out, steps=args.steps, batch=args.batch, lr=args.lr,
                       seed=args.seed, device=args.device, augment=AugmentConfig(crop=args.crop), objective=args.objective,
                       val_fraction=args.val_fraction, point_weight=args.point_weight)
    if args.objective == "dense":
        cfg.dense_augment.crop = args.crop
    state = train_stage2(net, cfg, EngineConfig(), progress, resume=not args.no_resume,
                         log=lambda m: sys.stderr.write(m + "\n"))
    if args.card:
        from .data import split_pairs

        train_ids, val_ids = split_pairs(args.pairs_dir, cfg.val_fraction)
        write_model_card(args.card, cfg, state, net.cfg.to_json(), len(train_ids), len(val_ids))
    print(f"trained {state.step} steps in {state.seconds / 60:.1f} min; validation {state.validation}; weights: {args.out}")
    return 0
