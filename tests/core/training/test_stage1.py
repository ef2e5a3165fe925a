import numpy as np
import pytest
import torch
from tiny_models import make_tiny_model_dir

from promptmid.config import EngineConfig
from promptmid.models.model_dir import load_sd_components
from promptmid.training.data import load_pairs
from promptmid.training.stage1 import Stage1Config, _crop_batch, train_stage1


def test_controlnet_steps_lower_the_denoising_loss(data_root, tmp_path):
    root = make_tiny_model_dir(str(tmp_path / "md"), with_controlnet=False)
    comps = load_sd_components(root, torch.float32, str(tmp_path / "cn"))
    pairs = load_pairs(str(data_root / "train"), ["3mos_SEN_rural_00", "3mos_GF3_city_00"], EngineConfig(max_side=256))
    cfg = Stage1Config(out_dir=str(tmp_path / "cn"), steps=25, batch=2, lr=2e-3, resolution=64, empty_prompt_prob=0.0)
    unet_before = {k: v.clone() for k, v in comps["unet"].state_dict().items()}

    # Fixed evaluation batch: same images, noise and timesteps before and after training.
    cond, target, lus = _crop_batch(pairs, np.random.default_rng(5), cfg)
    g = torch.Generator().manual_seed(0)

    def loss() -> float:
        torch.manual_seed(0)
        with torch.no_grad():
            lat = comps["vae"].encode(target).latent_dist.mean * comps["vae"].config.scaling_factor
            noise = torch.randn(lat.shape, generator=torch.Generator().manual_seed(1))
            t = torch.tensor([100, 600])
            noisy = comps["scheduler"].add_noise(lat, noise, t)
            ids = comps["tokenizer"](["a SAR image of city"] * 2, padding="max_length", max_length=77, return_tensors="pt").input_ids
            emb = comps["text_encoder"](ids)[0]
            down, mid = comps["controlnet"](noisy, t, encoder_hidden_states=emb, controlnet_cond=cond, return_dict=False)
            pred = comps["unet"](noisy, t, encoder_hidden_states=emb, down_block_additional_residuals=down,
                                 mid_block_additional_residual=mid).sample
            return float(torch.nn.functional.mse_loss(pred, noise))

    before = loss()
    state = train_stage1(comps, cfg, pairs=pairs)
    assert state.step == 25 and (tmp_path / "cn" / "config.json").exists()
    assert loss() < before
    # SD stays frozen; only the ControlNet learned.
    assert all(torch.equal(v, comps["unet"].state_dict()[k]) for k, v in unet_before.items())
    reloaded = load_sd_components(root, torch.float32, str(tmp_path / "cn"))["controlnet"]
    assert torch.equal(next(iter(reloaded.state_dict().values())), next(iter(comps["controlnet"].state_dict().values())))
