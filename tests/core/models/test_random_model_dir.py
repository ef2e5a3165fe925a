"""The random-weight model directories: the real-size spec matches the published models, the tokenizer needs
no download, and the tiny spec passes the engine's own directory check."""

import math

import torch

from promptmid.models.model_dir import check_model_dir
from promptmid.models.random_model_dir import SD15, TINY, write_random_model_dir, write_tokenizer
from promptmid.models.vgg import VGGFeatures


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_sd15_spec_builds_the_published_architectures():
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, Dinov2Config, Dinov2Model

    with init_empty_weights():  # shapes only: no memory, no time
        unet = UNet2DConditionModel(**SD15.unet)
        counts = dict(unet=_params(unet), controlnet=_params(ControlNetModel.from_unet(unet, **SD15.controlnet)),
                      vae=_params(AutoencoderKL(**SD15.vae)), text=_params(CLIPTextModel(CLIPTextConfig(**SD15.text))),
                      dino=_params(Dinov2Model(Dinov2Config(**SD15.dino))))
    # stable-diffusion-v1-5, lllyasviel/sd-controlnet-*, clip-vit-large-patch14 text tower, facebook/dinov2-base
    assert counts == dict(unet=859_520_964, controlnet=361_279_120, vae=83_653_863, text=123_060_480, dino=86_580_480)
    with torch.device("meta"):
        vgg = VGGFeatures(SD15.vgg_layers, [len(SD15.vgg_layers) * 2 - 1])
    assert _params(vgg) + sum(math.prod(s) for s in SD15.vgg_extra.values()) == 143_667_240  # torchvision vgg19
    assert len(vgg.state_dict()) + len(SD15.vgg_extra) == 38


def test_generated_tokenizer_has_clips_size_and_special_ids(tmp_path):
    from transformers import CLIPTokenizer

    write_tokenizer(str(tmp_path), SD15.tokenizer_merges)
    tok = CLIPTokenizer.from_pretrained(str(tmp_path))
    assert len(tok) == SD15.text["vocab_size"] == 49408
    assert (tok.bos_token_id, tok.eos_token_id) == (49406, 49407)
    ids = tok("a SAR image of farmland", padding="max_length", max_length=tok.model_max_length).input_ids
    assert len(ids) == 77 and ids[0] == 49406 and max(ids) < 49408


def test_tiny_directory_passes_the_model_check(tmp_path):
    root = write_random_model_dir(str(tmp_path), TINY, with_controlnet=False)
    status = {s.component.key: s.present for s in check_model_dir(root)}
    assert status == dict(stable_diffusion=True, controlnet=False, dinov2=True, vgg19=True, heads=False)
