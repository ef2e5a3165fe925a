"""Model card written next to a trained checkpoint: data, settings, validation metrics."""

from __future__ import annotations

import json
import platform

import torch

from .stage2 import Stage2Config, TrainState


_POINTS = """Compact PromptMID variant for CPU. PC-FAST keypoints. SAR and optical branches: small VGG-style CNNs
(GroupNorm) on [image, phase-congruency max moment, 6 log-Gabor orientation shares]; land-use prompt as
a learned FiLM embedding on the SAR branch. MSAA aggregates the CNN scales plus a frozen,
modality-invariant scale (the classical phase-congruency histogram descriptor, dense at stride 4: the
role frozen foundation features play in the full model), then CBAM, 128-D L2-normalised output. A
fixed skip connection carries the frozen prior to the output with weight `prior_skip` (similarity =
w cos(classical) + (1 - w) cos(learned)), chosen on the validation split after training. Trained with
InfoNCE (stage 2 only: no diffusion model in this profile), negatives closer than 8 px excluded. The
head starts as a pass-through of the prior (`prior_passthrough`: pooled prior bins, other scales damped,
uniform CBAM, identity projection), so training starts at the prior's accuracy instead of below it."""

_DENSE = """Lite PromptMID trained for dense use: its maps drive the global search and the guided templates
(instead of the handcrafted CFOG maps) and its descriptors the guided keypoint matches. SAR and optical
branches: small VGG-style CNNs (GroupNorm) on [image, 9 CFOG oriented-gradient channels]; land-use prompt
as a learned FiLM embedding on the SAR branch; MSAA over the CNN scales, CBAM, 16-D L2-normalised maps at
stride 2. Losses per sample, with the SAR map warped into the optical crop's frame by the known
augmentation (as the search warps it by a pose): translation correlation over +-24 px on 2 px cells and
at the guided stage's 33 px templates over +-8 px (softmax over the shifts, the true one must win: every
other shift is a same-image hard negative), InfoNCE over points (negatives closer than 8 px excluded),
and 4 hard negatives per point 4-32 px away in the same optical map."""


def _augmentation(cfg: Stage2Config) -> str:
    if cfg.objective == "dense":
        a, p = cfg.dense_augment, cfg.dense_augment.photometric
        return (f"random {a.region} px regions of the larger scenes, one of 8 flips / 90-degree turns for both images, "
                f"SAR speckle (looks {list(p.looks)}, 0 = none), renderings {list(p.renderings)}, gamma {list(p.gamma_range)}, "
                f"contrast {list(p.contrast_range)}, blur (p {p.blur_prob}), 2x upsampling (p {p.upsample_prob}); optical crop "
                f"rotated in +-{a.max_rotation_deg} deg, scaled in {list(a.scale_range)}, shifted +-{a.jitter_px} px; "
                f"{a.crop} px crops on the 512 px work grid.")
    a = cfg.augment
    return (f"optical crop rotated in [-{a.max_rotation_deg}, {a.max_rotation_deg}] deg, scaled in {list(a.scale_range)}, "
            f"jittered +-{a.jitter_px} px; crops of {a.crop} px on the 512 px work grid.")


def _dense_settings(cfg: Stage2Config) -> str:
    if cfg.objective != "dense":
        return ""
    return (f"- Dense objective: correlation weight {cfg.corr_weight} (temperature {cfg.corr_temperature}, +-{cfg.global_radius_cells} "
            f"2 px cells; {cfg.local_templates} templates of {cfg.local_template_px} px over +-{cfg.local_radius_px} px), "
            f"point weight {cfg.point_weight} ({cfg.hard_negatives} hard negatives per point).\n")


def _curve(losses: list) -> str:
    if not losses:
        return "n/a"
    return ", ".join(f"{sum(losses[i:i + 250]) / len(losses[i:i + 250]):.2f}" for i in range(0, len(losses), 250))


def write_model_card(path: str, cfg: Stage2Config, state: TrainState, model_json: str, n_train: int, n_val: int) -> None:
    val = state.validation or {}
    text = f"""# PromptMID-lite {"dense model" if cfg.objective == "dense" else "descriptor"}

{_DENSE if cfg.objective == "dense" else _POINTS}

## Data
- Trained on `{cfg.pairs_dir}`: {n_train} pairs (the `train/` split of the shared optical-SAR set:
  Sentinel-1/2 1024 px scenes and 3MOS 256 px tiles). Never the `test/` split.
- {n_val} pairs of that folder held out for validation by id hash (fraction {cfg.val_fraction}).
- Augmentation: {_augmentation(cfg)}

## Training
- steps {cfg.steps}, batch {cfg.batch}, AdamW lr {cfg.lr} (cosine decay to x{cfg.min_lr_ratio}), weight decay
  {cfg.weight_decay}, temperature {cfg.temperature}, seed {cfg.seed}.
- {state.seconds / 60:.1f} min on {torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}), torch {torch.__version__}.
- Final training loss (mean of last 50 steps): {sum(state.losses[-50:]) / max(len(state.losses[-50:]), 1):.3f}.
{_dense_settings(cfg)}- Training loss curve (mean per 250 steps): {_curve(state.losses)}.

## Validation (held-out train pairs, paper protocol)
```
{json.dumps(val, indent=1)}
```
Test-split results are in the README (`make bench`), not used for any choice here.

## Model config
```json
{model_json}
```
"""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
