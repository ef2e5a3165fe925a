"""Tiny, randomly initialised foundation models saved in the real model-directory layouts, so tests run
the same loading code (from_pretrained / torchvision state dict) as a user's real weights."""

from __future__ import annotations

import json
import os

import torch

from promptmid.models.network import ModelConfig
from promptmid.models.vgg import VGGFeatures

TINY_VGG = [8, 8, "M", 16, 16, "M", 16, 16, 16, 16, "M", 16, 16, 16, 16, "M"]  # VGG19 indices, tiny widths


def tiny_full_config(**overrides) -> ModelConfig:
    cfg = ModelConfig(profile="full", desc_dim=32, out_stride=4, cbam_reduction=4, vgg_layers=list(TINY_VGG))
    cfg.diffusion.ensemble = 1
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def _tokenizer_files(path: str) -> None:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.json"), "w") as fh:
        json.dump(vocab, fh)
    with open(os.path.join(path, "merges.txt"), "w") as fh:
        fh.write("#version: 0.2\n")
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer(os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt"), model_max_length=77)
    tok.save_pretrained(path)


def make_tiny_model_dir(root: str, with_controlnet: bool = True) -> str:
    from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    sd = os.path.join(root, "stable-diffusion-v1-5")
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 16, 32, 32),
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8)
    unet.save_pretrained(os.path.join(sd, "unet"))
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), latent_channels=4,
                  norm_num_groups=8, layers_per_block=1).save_pretrained(os.path.join(sd, "vae"))
    _tokenizer_files(os.path.join(sd, "tokenizer"))
    tok = CLIPTokenizer.from_pretrained(os.path.join(sd, "tokenizer"))
    CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=77, bos_token_id=len(tok) - 2,
                                 eos_token_id=len(tok) - 1, pad_token_id=len(tok) - 1)).save_pretrained(os.path.join(sd, "text_encoder"))
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(os.path.join(sd, "scheduler"))
    if with_controlnet:
        ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 16, 16)).save_pretrained(os.path.join(root, "controlnet-sar"))
    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             patch_size=14, image_size=56)).save_pretrained(os.path.join(root, "dinov2"))
    vgg = VGGFeatures(TINY_VGG, [max(i for i in range(len(TINY_VGG) * 2))], 3)
    torch.save({**vgg.state_dict(), "classifier.0.weight": torch.zeros(2, 2)}, os.path.join(root, "vgg19.pth"))
    return root
