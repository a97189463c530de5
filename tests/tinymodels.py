"""Tiny untrained model components for tests: one builder, so fixtures differ only where they say."""

from __future__ import annotations

import torch


def tiny_components(attention_levels: tuple[bool, ...] = (False,) * 4, sampler: str = "heun", steps: int = 3,
                    block_out_channels: tuple[int, ...] = (8, 16, 16, 16)):
    """ModelComponents of a ~100 k-parameter score UNet and the tiny lip encoder, seeded (0).

    Four levels, so that the middle block's attention (every UNet has one) runs at 1/8 of the
    spectrogram's resolution: at 1/4 (three levels) it took half the time of a 5-minute enhancement.
    """
    from avdiff.config import SamplerConfig, SpectrogramConfig
    from avdiff.diffusion import EDMFormulation
    from avdiff.models import LipEncoder, ScoreUNet
    from avdiff.pipeline import ModelComponents

    torch.manual_seed(0)
    return ModelComponents(
        lip_encoder=LipEncoder.from_preset("tiny", output_dim=8),
        score_model=ScoreUNet(block_out_channels=block_out_channels, attention_levels=attention_levels,
                              norm_num_groups=4, attention_head_dim=8, cond_channels=8, cond_hidden_channels=8),
        formulation=EDMFormulation(sigma_data=0.1),
        spectrogram=SpectrogramConfig(n_fft=254),
        sampler=SamplerConfig(name=sampler, steps=steps),
        crop_size=32,
    )
