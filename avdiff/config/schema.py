"""The typed configuration of avdiff: one dataclass per YAML section, every key documented.

The help text of each field is the comment written above the key in resolved configs, so
`configs/*.yaml`, `avdiff config` and the `config.yaml` beside every output stay in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avdiff.config.loader import option, section


@dataclass
class SpectrogramConfig:
    """Waveform <-> compressed complex STFT; the defaults match SGMSE+ / UDiffSE."""

    sample_rate: int = option(16000, "audio sample rate in Hz; inputs at other rates are resampled")
    n_fft: int = option(510, "FFT size; 510 gives 256 frequency bins (SGMSE+)")
    hop_length: int = option(128, "hop in samples; 128 at 16 kHz = 125 frames/s = 5 per 25 fps video frame")
    window: Literal["hann"] = option("hann", "analysis window: periodic Hann")
    center: bool = option(True, "centre frames (frame k is centred on sample k * hop_length)")
    compression_alpha: float = option(0.5, "amplitude compression exponent: |c| -> beta * |c|**alpha")
    compression_beta: float = option(0.15, "amplitude compression scale beta")

    def __post_init__(self) -> None:
        if self.n_fft < 2 or self.hop_length < 1 or self.hop_length > self.n_fft:
            raise ValueError(f"need 1 <= hop_length ({self.hop_length}) <= n_fft ({self.n_fft})")
        if not 0 < self.compression_alpha <= 1 or self.compression_beta <= 0:
            raise ValueError("need 0 < compression_alpha <= 1 and compression_beta > 0")


@dataclass
class EDMConfig:
    """EDM (Karras et al. 2022): x = x0 + sigma * n with the preconditioned denoiser.

    The noise levels left null follow sigma_data (avdiff.diffusion.formulation.edm_noise_levels):
    EDM's defaults were tuned for images with sigma_data 0.5; compressed speech spectrograms
    have about 0.08.
    """

    sigma_min: float | None = option(None, "smallest noise level the samplers visit; null = 0.004 * sigma_data")
    sigma_max: float | None = option(None, "largest noise level, where sampling starts; null = 160 * sigma_data")
    rho: float = option(7.0, "Karras schedule exponent for the sampling noise levels")
    p_mean: float | None = option(
        None, "training noise levels: ln(sigma) ~ N(p_mean, p_std**2); null = ln(1.5 * sigma_data)")
    p_std: float = option(1.8, "training noise levels: standard deviation of ln(sigma) (EDM's images: 1.2)")


@dataclass
class OUVEConfig:
    """SGMSE+ / UDiffSE Ornstein-Uhlenbeck variance-exploding SDE (prior mean y = 0)."""

    theta: float = option(1.5, "stiffness of the OU drift towards the mean")
    sigma_min: float = option(0.05, "diffusion coefficient scale at t = 0")
    sigma_max: float = option(0.5, "diffusion coefficient scale at t = 1")
    t_eps: float = option(0.03, "smallest diffusion time used in training and sampling")
    t_max: float = option(1.0, "largest diffusion time: where sampling starts")


@dataclass
class DiffusionConfig:
    """Which diffusion formulation the score network is trained and sampled with."""

    formulation: Literal["edm", "ouve"] = option("edm", "edm (default) or ouve (SGMSE+/UDiffSE SDE)")
    sigma_data: float | None = option(
        None, "std of the compressed spectrogram values; null = measure it from the training data"
    )
    edm: EDMConfig = section(EDMConfig, "settings used when formulation is edm")
    ouve: OUVEConfig = section(OUVEConfig, "settings used when formulation is ouve")


@dataclass
class ScoreModelConfig:
    """The UNet on the 2-channel spectrogram (see avdiff.models.score_unet.ScoreUNet)."""

    block_out_channels: tuple[int, ...] = option((16, 32, 48, 64, 64), "channels at each resolution")
    layers_per_block: int = option(1, "resnet layers per resolution (the decoder uses one more)")
    attention_levels: tuple[bool, ...] = option(
        (False, False, False, False, True), "self-attention at each resolution (one flag per block_out_channels)"
    )
    attention_head_dim: int = option(32, "channels per attention head")
    norm_num_groups: int = option(8, "GroupNorm groups; must divide every channel count")
    cond_channels: int = option(64, "size D of the conditioning (lip embedding) vectors")
    cond_hidden_channels: int = option(32, "width of the conditioning trunk before per-level projection")
    time_embedding_scale: float = option(16.0, "scale of the Gaussian Fourier noise-level embedding")
    dropout: float = option(0.0, "dropout inside the resnet blocks")
    frequency_channels: int = option(4, "fixed cos(pi k f / F) input channels telling the network each bin's frequency")
    cond_spectral_channels: int = option(2, "input channels of per-frame spectral maps predicted from the condition")
    cond_spectral_bins: int = option(64, "frequency points of those maps (interpolated to the STFT bins)")

    def __post_init__(self) -> None:
        if len(self.attention_levels) != len(self.block_out_channels):
            raise ValueError(
                f"attention_levels has {len(self.attention_levels)} flags but block_out_channels "
                f"has {len(self.block_out_channels)} levels; give one flag per level"
            )
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise ValueError(f"norm_num_groups={self.norm_num_groups} must divide every channel count, not {bad}")
        attended = [c for c, a in zip(self.block_out_channels, self.attention_levels) if a]
        attended.append(self.block_out_channels[-1])  # the middle block always attends
        bad = sorted({c for c in attended if c % self.attention_head_dim})
        if bad:
            raise ValueError(
                f"attention_head_dim={self.attention_head_dim} must divide the channels of every "
                f"attending level (and the last level), not {bad}"
            )


@dataclass
class SamplerConfig:
    """Default reverse-process settings (stored with a model so it samples as it was meant to)."""

    name: Literal["euler_maruyama", "predictor_corrector", "heun", "edm_stochastic"] = option(
        "predictor_corrector", "sampler: euler_maruyama | predictor_corrector | heun | edm_stochastic"
    )
    steps: int = option(30, "number of noise levels (network calls: PC 2/level, Heun 2/level - 1)")
    guidance_scale: float = option(1.0, "classifier-free guidance w: 1 = plain conditional sampling")
    snr: float = option(0.5, "predictor_corrector: Langevin corrector signal-to-noise ratio")
    corrector_steps: int = option(1, "predictor_corrector: Langevin steps per noise level")
    churn: float = option(0.0, "edm_stochastic: S_churn, total noise re-injected over the run")
    churn_sigma_min: float = option(0.0, "edm_stochastic: churn only at sigma >= this")
    churn_sigma_max: float = option(1e9, "edm_stochastic: churn only at sigma <= this")
    noise_inflation: float = option(1.0, "edm_stochastic: S_noise, std of the re-injected noise")

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@dataclass
class LipEncoderConfig:
    """The lip encoder (see avdiff.models.lip_encoder.LipEncoder)."""

    preset: Literal["tiny", "base"] = option("tiny", "architecture preset: tiny (tests, CPU) or base (ResNet-18 + Conformer)")
    output_dim: int = option(64, "embedding size D; must equal score_model.cond_channels")
    pretrained_frontend: str | None = option(
        None, "local file with a pretrained visual front-end (auto_avsr / AV-HuBERT key layout), or null"
    )
    freeze_frontend: bool = option(False, "keep the visual front-end fixed during training")
    train: bool = option(True, "train the whole lip encoder jointly; false freezes all of it")


@dataclass
class DataConfig:
    """Prepared manifests and how training crops are drawn from them."""

    train_manifest: str | None = option(None, "JSONL manifest of the training set (paths relative to its folder)")
    valid_manifest: str | None = option(None, "JSONL manifest of the validation set, or null for none")
    crop_frames: int = option(256, "STFT frames per training crop (256 = 2.04 s); crops start on video frames")
    crop_size: int = option(88, "mouth-crop side fed to the lip encoder; stored larger crops are cut to it")
    normalize: Literal["peak", "none"] = option(
        "peak", "scale each clip's audio to peak 1 (as SGMSE+/UDiffSE; enhancement scales its input the same way)"
    )
    random_crop: bool = option(True, "train: random crop_size window of larger stored crops (else centre)")
    hflip_prob: float = option(0.5, "train: probability of flipping a clip's mouth crops left-right")
    time_mask_prob: float = option(0.5, "train: probability of masking one span of video frames")
    time_mask_max_frames: int = option(5, "train: longest masked span, in video frames (0.2 s)")
    num_workers: int = option(2, "data-loading worker processes per GPU (0 = in the main process)")

    def __post_init__(self) -> None:
        if self.crop_frames < 2:
            raise ValueError(f"crop_frames must be >= 2, got {self.crop_frames}")
        if not 0.0 <= self.hflip_prob <= 1.0 or not 0.0 <= self.time_mask_prob <= 1.0:
            raise ValueError("hflip_prob and time_mask_prob are probabilities in [0, 1]")


@dataclass
class TrainingConfig:
    """Optimisation, checkpoints, logging and condition dropout for `training/train.py`."""

    batch_size: int = option(4, "crops per GPU per micro-batch")
    gradient_accumulation_steps: int = option(1, "micro-batches per optimizer step")
    max_steps: int = option(1000, "optimizer steps to train for (--max-steps overrides)")
    learning_rate: float = option(1e-4, "AdamW peak learning rate")
    weight_decay: float = option(0.0, "AdamW weight decay")
    adam_beta1: float = option(0.9, "AdamW beta1")
    adam_beta2: float = option(0.999, "AdamW beta2")
    warmup_steps: int = option(100, "linear learning-rate warm-up steps")
    lr_schedule: Literal["cosine", "constant"] = option("cosine", "after warm-up: cosine decay to 0 or constant")
    max_grad_norm: float = option(1.0, "gradient clipping threshold (global L2 norm)")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = option(
        "auto", "network precision: auto = bf16 on GPUs that support it, else fp32"
    )
    ema_decay: float = option(0.999, "EMA decay of the exported / validated weights")
    cond_drop_prob: float = option(0.15, "probability of dropping a whole item's condition (guidance, audio-only prior)")
    cond_span_drop_prob: float = option(0.3, "probability of dropping one random span of condition frames")
    cond_span_max_frames: int = option(125, "longest dropped condition span, in STFT frames (1 s)")
    sigma_data_batches: int = option(20, "batches used to measure sigma_data when diffusion.sigma_data is null")
    seed: int = option(0, "seed of data order, crops, augmentations, noise and dropout")
    checkpoint_every: int = option(500, "save checkpoint-N/ every this many steps")
    keep_checkpoints: int = option(3, "keep this many newest checkpoints (older ones removed after a save)")
    log_every: int = option(10, "log scalars every this many steps")
    validate_every: int = option(500, "validation loss + sampling pass every this many steps (0 = never)")
    validation_batches: int = option(4, "batches of the validation loss")
    validation_samples: int = option(2, "validation clips generated from video and logged as audio/images")
    validation_sampler_steps: int = option(10, "sampler levels of the validation sampling pass")
    max_nonfinite_steps: int = option(5, "stop after this many non-finite steps in a row")

    def __post_init__(self) -> None:
        for name in ("batch_size", "gradient_accumulation_steps", "max_steps", "checkpoint_every", "keep_checkpoints",
                     "log_every", "max_nonfinite_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.cond_drop_prob <= 1.0 or not 0.0 <= self.cond_span_drop_prob <= 1.0:
            raise ValueError("cond_drop_prob and cond_span_drop_prob are probabilities in [0, 1]")


@dataclass
class AVDiffConfig:
    """Everything one model, training run or sampling job needs, in one validated object."""

    spectrogram: SpectrogramConfig = section(SpectrogramConfig, "STFT representation")
    diffusion: DiffusionConfig = section(DiffusionConfig, "diffusion formulation")
    score_model: ScoreModelConfig = section(ScoreModelConfig, "score network architecture")
    lip_encoder: LipEncoderConfig = section(LipEncoderConfig, "lip encoder architecture and weights")
    sampler: SamplerConfig = section(SamplerConfig, "default sampler settings")
    data: DataConfig = section(DataConfig, "training data")
    training: TrainingConfig = section(TrainingConfig, "optimisation, checkpoints and logging")

    def __post_init__(self) -> None:
        if self.lip_encoder.output_dim != self.score_model.cond_channels:
            raise ValueError(
                f"lip_encoder.output_dim ({self.lip_encoder.output_dim}) must equal "
                f"score_model.cond_channels ({self.score_model.cond_channels})"
            )
