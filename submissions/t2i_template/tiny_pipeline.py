"""A miniature Stable Diffusion pipeline (CLIP text encoder, VAE, UNet), randomly initialised.

train.py trains one on digits so the template runs offline out of the box; the tests build one
so the real loading and generation code runs without hub weights. Real use: SDXL-Turbo.
"""
from __future__ import annotations


def char_tokenizer(max_length: int = 24):
    """A CLIP tokenizer over single printable characters (no merges): enough for class prompts."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for code in range(33, 127):
        for token in (chr(code), chr(code) + "</w>"):
            vocab.setdefault(token, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def build(resolution: int = 8, width: int = 32):
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = char_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()), hidden_size=width, intermediate_size=2 * width, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=tokenizer.model_max_length, bos_token_id=0, eos_token_id=1,
        pad_token_id=1))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=resolution,
                        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(16, 32),
                        norm_num_groups=16)
    unet = UNet2DConditionModel(sample_size=resolution // 2, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(width, 2 * width),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=width,
                                norm_num_groups=16, attention_head_dim=8)
    scheduler = EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                                timestep_spacing="trailing", steps_offset=1)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
