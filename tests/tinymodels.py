"""Tiny untrained model components for tests: one builder, so fixtures differ only where they say."""

from __future__ import annotations

import torch


def tiny_components(attention_levels: tuple[bool, ...] = (False, False, False), sampler: str = "heun",
                    steps: int = 3):
    """ModelComponents of a ~30 k-parameter score UNet and the tiny lip encoder, seeded (0)."""
    from avdiff.config import SamplerConfig, SpectrogramConfig
    from avdiff.diffusion import EDMFormulation
    from avdiff.models import LipEncoder, ScoreUNet
    from avdiff.pipeline import ModelComponents

    torch.manual_seed(0)
    return ModelComponents(
        lip_encoder=LipEncoder.from_preset("tiny", output_dim=8),
        score_model=ScoreUNet(block_out_channels=(8, 16, 16), attention_levels=attention_levels,
                              norm_num_groups=4, attention_head_dim=8, cond_channels=8, cond_hidden_channels=8),
        formulation=EDMFormulation(sigma_data=0.1),
        spectrogram=SpectrogramConfig(n_fft=254),
        sampler=SamplerConfig(name=sampler, steps=steps),
        crop_size=32,
    )
