"""The typed configuration of avdiff: one dataclass per YAML section, every key documented.

The help text of each field is the comment written above the key in resolved configs, so
`configs/*.yaml`, `avdiff config` and the `config.yaml` beside every output stay in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from avdiff.config.loader import option, section
from avdiff.errors import ConfigError
from avdiff.timegrid import SAMPLE_RATE, STFT_HOP_LENGTH


def check_finite(section: object) -> None:
    """Every float of a config section is a finite number (NaN and inf are errors, never defaults)."""
    for field in fields(section):  # type: ignore[arg-type]
        value = getattr(section, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{field.name} must be a finite number, got {value}")


def check_at_least(section: object, minimum: float, *names: str) -> None:
    """Each named value of a config section is >= `minimum`."""
    for name in names:
        if getattr(section, name) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {getattr(section, name)}")


def check_registered(section: object, key: str, extension_point: str) -> None:
    """The name in `key` of a config section is registered in `extension_point` (a registry of
    avdiff.extension_points, imported here: what a config names decides what it needs; plug-ins
    load when the name is not a built-in one). A ConfigError naming the key and what is registered."""
    from avdiff.extension_points import registry
    from avdiff.registry import RegistryError

    try:
        registry(extension_point).require(getattr(section, key))
    except RegistryError as error:
        raise ConfigError(f"{key}: {error}") from None


SAMPLING_STARTS = ("noise", "rendition")  # where video-to-speech sampling may start (SamplerConfig.start)


@dataclass
class SpectrogramConfig:
    """Waveform <-> compressed complex STFT; the defaults match SGMSE+ / UDiffSE."""

    sample_rate: int = option(SAMPLE_RATE, "audio sample rate in Hz; inputs at other rates are resampled")
    n_fft: int = option(510, "FFT size; 510 gives 256 frequency bins (SGMSE+)")
    hop_length: int = option(STFT_HOP_LENGTH, "hop in samples; 128 at 16 kHz = 125 frames/s = 5 per 25 fps video frame")
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

    formulation: str = option("edm", "from the registry avdiff.diffusion.formulation.FORMULATIONS: edm (default) or "
                              "ouve (SGMSE+/UDiffSE SDE)")
    sigma_data: float | None = option(
        None, "std of the compressed spectrogram values; null = measure it from the training data"
    )
    edm: EDMConfig = section(EDMConfig, "settings used when formulation is edm")
    ouve: OUVEConfig = section(OUVEConfig, "settings used when formulation is ouve")

    def __post_init__(self) -> None:
        check_registered(self, "formulation", "formulations")


@dataclass
class UNetConfig:
    """The UNet on the 2-channel spectrogram (see avdiff.models.score_unet.ScoreUNet)."""

    block_out_channels: tuple[int, ...] = option((16, 32, 48, 64, 64), "channels at each resolution")
    layers_per_block: int = option(1, "resnet layers per resolution (the decoder uses one more)")
    attention_levels: tuple[bool, ...] = option(
        (False, False, False, False, True), "self-attention at each resolution (one flag per block_out_channels)"
    )
    attention_head_dim: int = option(32, "channels per attention head")
    norm_num_groups: int = option(8, "GroupNorm groups; must divide every channel count")
    cond_hidden_channels: int = option(32, "width of the conditioning trunk before per-level projection")
    time_embedding_scale: float = option(16.0, "scale of the Gaussian Fourier noise-level embedding")
    dropout: float = option(0.0, "dropout inside the resnet blocks")
    frequency_channels: int = option(4, "fixed cos(pi k f / F) input channels telling the network each bin's frequency")
    cond_spectral_channels: int = option(2, "input channels of per-frame spectral maps predicted from the condition")
    cond_spectral_bins: int = option(64, "frequency points of those maps (interpolated to the STFT bins)")
    cond_envelope_bands: int = option(
        0, "the condition's first N channels are a log-mel envelope (lip_encoder.envelope_bands), drawn on the "
        "STFT bins as one more input channel; 0 = none")

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
class ScoreModelConfig:
    """The score network: which backbone of the registry (avdiff.models.backbones) and its settings.

    Every backbone takes (c_in x, c_noise, cond (B, D, T), cond_mask (B, T)) and turns masked
    frames into a learned null condition (the contract classifier-free guidance relies on).
    """

    backbone: str = option("unet", "backbone name from the registry avdiff.models.backbones.BACKBONES (built in: unet)")
    cond_channels: int = option(64, "size D of the conditioning (lip embedding) vectors")
    pretrained: str | None = option(
        None, "start from the score network of a trained model folder (or shipped model name) with this "
        "architecture, e.g. to fine-tune it on new lips; training denoises on its sigma_data; null = a new network")
    unet: UNetConfig = section(UNetConfig, "settings used when backbone is unet")
    options: dict[str, Any] = option(
        {}, "settings of a backbone registered outside avdiff, checked against its registered config class")

    def __post_init__(self) -> None:
        check_registered(self, "backbone", "backbones")


@dataclass
class SamplerConfig:
    """Default reverse-process settings (stored with a model so it samples as it was meant to)."""

    name: str = option("dpmpp_2m", "sampler from the registry avdiff.diffusion.samplers.SAMPLERS "
                       "(dpmpp_2m | euler_maruyama | predictor_corrector | heun | edm_stochastic | ...)")
    steps: int = option(8, "number of noise levels (network calls: DPM-Solver++ and Euler-Maruyama 1/level, PC "
                        "2/level, Heun 2/level - 1); dpmpp_2m at 8 is chosen in BENCHMARKS.md, 'Quality against "
                        "network calls'")
    guidance_scale: float = option(1.0, "classifier-free guidance w: 1 = plain conditional sampling")
    guidance_min_sigma: float = option(
        0.0, "guidance only at noise levels of at least this many sigma_data, plain conditional below (guidance "
        "in a limited interval: one network pass instead of two at those levels); 0 = at every level")
    options: dict[str, Any] = option(
        {}, "the sampler's own settings, e.g. {eta: 1.0} (dpmpp_2m), {snr: 0.5, corrector_steps: 1} "
        "(predictor_corrector) or {churn: 0.0} (edm_stochastic); unset ones take the sampler's defaults")
    start: Literal[SAMPLING_STARTS] = option(
        "noise", "where video-to-speech sampling starts: noise (pure noise at the largest level) | rendition "
        "(a source-filter rendition of the lips' envelope noised to start_sigma, then `steps` levels down from "
        "there: avdiff/audio/rendition.py, BENCHMARKS.md 'Rendition start')")
    start_sigma: float = option(1.0, "the noise level, in sigma_data, a rendition start is noised to")
    pitch_hz: float = option(120.0, "the voice's pitch in a rendition start, Hz")

    def __post_init__(self) -> None:
        check_finite(self)
        check_at_least(self, 1, "steps")
        check_at_least(self, 0.0, "guidance_min_sigma")
        if self.start not in SAMPLING_STARTS:
            raise ValueError(f"start must be one of {', '.join(SAMPLING_STARTS)}, got {self.start!r}")
        if self.start_sigma <= 0:
            raise ValueError(f"start_sigma must be > 0, got {self.start_sigma}")
        if not 40.0 <= self.pitch_hz <= 1000.0:
            raise ValueError(f"pitch_hz must be in 40 .. 1000 Hz (a voice's pitch), got {self.pitch_hz}")
        check_registered(self, "name", "samplers")


# The flat `enhancement.posterior` section of configs and model folders written before posterior
# methods had settings of their own (avdiff.posterior), with the values every method then
# defaulted to. Read, never written: `EnhancementConfig.upgrade_legacy_keys` keeps the values
# that differ from these as the options of the recorded method (tests/test_posterior_methods.py
# checks that they are the built-in methods' defaults, so nothing recorded is lost).
LEGACY_POSTERIOR_DEFAULTS: dict[str, Any] = {
    "steps": 12, "schedule": "model", "predictor": "reverse_diffusion", "start_sigma": 10.0,
    "start_point": "observation", "normalize": "peak", "corrector_steps": 0, "snr": 0.5,
    "corrector_step_factor": 2.0, "corrector_likelihood": True, "likelihood_weight": 1.5, "likelihood_every": 1,
    "rescale_likelihood": True, "clamp_gain": True, "nmf_rank": 4, "nmf_iterations": 1, "nmf_pass_updates": 24,
    "nmf_init": "scaled", "nmf_refit_below": 5.0, "em_iterations": 5, "num_samples": 2, "dps_weight": 1.0,
    "sampler": "dpmpp_2m", "sampler_eta": 0.0,
}
LEGACY_PRESETS = ("udiffse-paper",)  # methods whose run ignored the flat section
LEGACY_METHODS = ("udiffse+", "udiffse", "dps", "diffpir")  # the methods a flat section can name


@dataclass
class EnhancementConfig:
    """Defaults of `avdiff enhance` and `pipeline.enhance` (each has flags / arguments to change them)."""

    method: str = option(
        "udiffse+", "posterior method or preset from the registry avdiff.posterior.METHODS (udiffse+ | udiffse | "
        "dps | diffpir | udiffse+lips | udiffse-paper: UDiffSE as published | av-udiffse | fudiffse-paper; a VAE "
        "model's: vae-mcem | switching-vae)")
    options: dict[str, Any] = option(
        {}, "the method's own settings (`avdiff enhance --help` lists them), checked against its registered "
        "settings class; unset ones take the method's defaults; they apply to this method only")
    guidance_scale: float = option(1.0, "classifier-free guidance w of the lip condition (1 = plain conditional)")
    chunk_frames: int = option(256, "STFT frames per chunk of long inputs")
    even_chunks: bool = option(
        False, "long inputs in the fewest chunks of at most chunk_frames, all of one length (less network work than "
        "chunks of chunk_frames each; false: every chunk chunk_frames long)")
    batch_size: int = option(8, "chunks processed together")

    def __post_init__(self) -> None:
        check_finite(self)
        check_at_least(self, 1, "chunk_frames", "batch_size")
        check_registered(self, "method", "posterior methods")
        from avdiff.extension_points import registry  # the method's settings class checks its options

        registry("posterior methods").get(self.method).settings(self.options, source="options")

    @staticmethod
    def upgrade_legacy_keys(data: dict[str, Any]) -> dict[str, Any]:
        """A section written before methods had their own settings: the flat `posterior` section's
        values that differ from `LEGACY_POSTERIOR_DEFAULTS` become `options` (explicit ones win)."""
        if "posterior" not in data:
            return data
        data = dict(data)
        legacy = data.pop("posterior") or {}
        if not isinstance(legacy, dict):
            raise ConfigError(f"enhancement.posterior must be a mapping, got {type(legacy).__name__}")
        if data.get("method", "udiffse+") in LEGACY_PRESETS:
            legacy = {}
        changed = {k: v for k, v in legacy.items() if k not in LEGACY_POSTERIOR_DEFAULTS
                   or LEGACY_POSTERIOR_DEFAULTS[k] != v}
        data["options"] = {**changed, **(data.get("options") or {})}
        return data


@dataclass
class LipEncoderConfig:
    """The lip encoder (see avdiff.models.lip_encoder.LipEncoder)."""

    preset: Literal["tiny", "small", "small-context", "base"] = option(
        "tiny", "architecture preset: tiny (tests, CPU), small (CPU, two Conformer layers), small-context (small's "
        "front-end, four wider Conformer layers over 1.3 s) or base (ResNet-18 + Conformer)")
    output_dim: int = option(64, "embedding size D; must equal score_model.cond_channels")
    pretrained_frontend: str | None = option(
        None, "local file with a pretrained visual front-end (auto_avsr / AV-HuBERT key layout), or null"
    )
    freeze_frontend: bool = option(False, "keep the visual front-end fixed during training")
    pretrained: str | None = option(
        None, "start from a trained lip encoder: its folder, or a model folder holding one (the second stage "
        "of a two-stage recipe); its architecture replaces the preset's, its output_dim and envelope_bands "
        "must equal these; null = a new one")
    train: bool = option(True, "train the whole lip encoder jointly; false freezes all of it")
    envelope_bands: int = option(
        0, "train the embedding's first N channels to be the speech's log-mel envelope in N mel bands "
        "(training.envelope_loss_weight); 0 = none")


@dataclass
class DataConfig:
    """Prepared manifests and how training crops are drawn from them."""

    train_manifest: str | list[str] | None = option(
        None, "JSONL manifest of the training set (paths relative to its folder), or a list of them "
        "(e.g. an audio-visual corpus and audio-only speech)")
    train_weights: list[float] | None = option(
        None, "sampling weight of each train_manifest: its share of the training crops; null = by size")
    valid_manifest: str | list[str] | None = option(
        None, "JSONL manifest(s) of the validation set, or null for none")
    crop_frames: int = option(256, "STFT frames per training crop (256 = 2.04 s); crops start on video frames")
    crop_size: int = option(88, "mouth-crop side fed to the lip encoder; stored larger crops are cut to it")
    normalize: Literal["peak", "none"] = option(
        "peak", "scale each clip's audio to peak 1 (as SGMSE+/UDiffSE; enhancement scales its input the same way)"
    )
    random_crop: bool = option(True, "train: random crop_size window of larger stored crops (else centre)")
    hflip_prob: float = option(0.5, "train: probability of flipping a clip's mouth crops left-right")
    time_mask_prob: float = option(0.5, "train: probability of masking one span of video frames")
    time_mask_max_frames: int = option(5, "train: longest masked span, in video frames (0.2 s)")
    geometric_jitter: float = option(
        0.0, "train: one random similarity transform per clip's mouth crops, scale 1 +- g, shift +- g half-sides, "
        "rotation +- 50 g degrees (avdiff/data/video_jitter.py); 0 = none")
    exposure_jitter: float = option(
        0.0, "train: one random contrast (1 +- p) and brightness (+- p half the grey range) change per clip's mouth "
        "crops; 0 = none")
    num_workers: int = option(2, "data-loading worker processes per GPU (0 = in the main process)")

    def __post_init__(self) -> None:
        check_finite(self)
        check_at_least(self, 0, "num_workers", "time_mask_max_frames")
        check_at_least(self, 1, "crop_size")
        if self.crop_frames < 2:
            raise ValueError(f"crop_frames must be >= 2, got {self.crop_frames}")
        if not 0.0 <= self.hflip_prob <= 1.0 or not 0.0 <= self.time_mask_prob <= 1.0:
            raise ValueError("hflip_prob and time_mask_prob are probabilities in [0, 1]")
        if not 0.0 <= self.geometric_jitter <= 0.5 or not 0.0 <= self.exposure_jitter <= 0.5:
            raise ValueError(f"geometric_jitter and exposure_jitter must be in 0 .. 0.5, got {self.geometric_jitter} "
                             f"and {self.exposure_jitter}")
        if self.train_weights is not None:
            count = len(self.train_manifest) if isinstance(self.train_manifest, list) else 1
            if len(self.train_weights) != count or min(self.train_weights) < 0 or sum(self.train_weights) <= 0:
                raise ValueError(f"train_weights needs {count} non-negative weight(s) with a positive sum, "
                                 f"one per train_manifest; got {self.train_weights}")


@dataclass
class TrainingConfig:
    """Optimisation, checkpoints, logging and condition dropout for `avdiff train`."""

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
    envelope_loss_weight: float = option(
        1.0, "weight of the lip envelope loss (mean squared error of the lips' log-mel envelope, "
        "when lip_encoder.envelope_bands > 0) added to the denoising loss")
    envelope_fast_weight: float = option(
        0.0, "extra weight of the fast part of the lips' envelope error (the error minus its moving mean over 200 "
        "ms, `avdiff.audio.envelope.slow_part`): the movements shorter than a syllable that tell letters apart, "
        "which cost more words than the slow part of the same error (BENCHMARKS.md); the validation's `envelope` "
        "figure includes it; 0 = the plain error")
    phone_loss_weight: float = option(
        0.0, "weight of a cross-entropy loss on the phoneme sounding at each video frame (the corpus's "
        "alignments.jsonl, as `avdiff synth` writes it), read by a linear classifier from the lips' channels after "
        "the envelope's: a lip encoder that must name the phonemes predicts their envelopes better (BENCHMARKS.md, "
        "\"Lips that name the phonemes\"); objectives joint and lips; 0 = none")
    cache_frontend_features: bool = option(
        False, "compute the frozen visual front-end's features of every clip once (as seen and mirrored) and train "
        "the rest on them (avdiff/data/frontend_cache.py): a lip encoder's temporal part trains several times "
        "faster; needs lip_encoder.freeze_frontend (or lip_encoder.train false) and no pixel augmentation but "
        "the flip (data.random_crop false, data.time_mask_prob, geometric_jitter, exposure_jitter 0)")
    frontend_cache_dir: str | None = option(
        None, "folder of training.cache_frontend_features's caches (null: OUTPUT/frontend-features); name another "
        "run's to read back what it computed: a cache is used only for the same front-end weights and clips")
    objective: Literal["joint", "lips", "vae", "guided"] = option(
        "joint", "joint: the denoising loss (plus the lips' envelope loss); lips: the lip encoder alone on the "
        "envelope loss, the score network untouched (the first stage of a two-stage recipe); vae: the speech VAE "
        "of the `vae` section instead of a score network (its ELBO; with lips from a frozen lip_encoder.pretrained); "
        "guided: guidance distillation, the score network (started from the teacher's) learns in one pass what "
        "the `teacher` model's classifier-free guidance gives in two, reading the teacher's frozen lips")
    teacher: str | None = option(
        None, "training.objective guided: the model folder (or shipped name) whose guided denoiser is distilled")
    teacher_guidance: float = option(2.0, "training.objective guided: the teacher's guidance weight w")
    envelope_noise_std: float = option(
        0.0, "Gaussian noise added to the lips' envelope channels before the score network reads them, in "
        "training only (so it reads an envelope that errs as the lips do on new sentences); 0 = none")
    envelope_blur_prob: float = option(
        0.0, "probability that a clip's envelope channels are blurred over 3 video frames before the score "
        "network reads them, in training only")
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
        check_finite(self)
        check_at_least(self, 1, "batch_size", "gradient_accumulation_steps", "max_steps", "checkpoint_every",
                       "keep_checkpoints", "log_every", "max_nonfinite_steps", "sigma_data_batches",
                       "validation_sampler_steps")
        check_at_least(self, 0, "warmup_steps", "weight_decay", "envelope_loss_weight", "envelope_fast_weight",
                       "phone_loss_weight", "cond_span_max_frames",
                       "validate_every", "validation_batches", "validation_samples", "envelope_noise_std")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0:
            raise ValueError(f"learning_rate ({self.learning_rate}) and max_grad_norm ({self.max_grad_norm}) must be > 0")
        for name in ("adam_beta1", "adam_beta2", "ema_decay"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not all(0.0 <= p <= 1.0 for p in (self.cond_drop_prob, self.cond_span_drop_prob, self.envelope_blur_prob)):
            raise ValueError("cond_drop_prob, cond_span_drop_prob and envelope_blur_prob are probabilities in [0, 1]")


@dataclass
class VAEConfig:
    """The frame-wise speech VAE trained when training.objective is vae (avdiff.models.speech_vae)."""

    latent_dim: int = option(32, "size of the latent vector of each STFT frame (the AV-CVAE paper: 32)")
    hidden_dims: tuple[int, ...] = option((128,), "hidden layer widths of the encoder (the decoder mirrors them)")
    audio_visual: bool = option(True, "condition on the lips (the pretrained lip encoder's embedding); false: "
                                "audio-only VAE with a N(0, I) prior")
    cond_hidden: int = option(128, "width of the lips' features inside the VAE")
    kl_weight: float = option(1.0, "weight of the KL term of the ELBO (1: the plain VAE)")

    def __post_init__(self) -> None:
        check_at_least(self, 1, "latent_dim", "cond_hidden")
        check_at_least(self, 0.0, "kl_weight")
        if not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ValueError(f"hidden_dims must be one or more positive widths, got {self.hidden_dims}")


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
    enhancement: EnhancementConfig = section(EnhancementConfig, "enhancement defaults")
    vae: VAEConfig = section(VAEConfig, "the speech VAE (training.objective vae)")

    def __post_init__(self) -> None:
        bands, drawn = self.lip_encoder.envelope_bands, self.score_model.unet.cond_envelope_bands
        if not 0 <= bands <= self.lip_encoder.output_dim or drawn not in (0, bands):
            raise ValueError(
                f"lip_encoder.envelope_bands ({bands}) must be in 0 .. output_dim ({self.lip_encoder.output_dim}), "
                f"and score_model.unet.cond_envelope_bands ({drawn}) 0 or the same number")
        if self.training.objective == "lips" and (not bands or not self.lip_encoder.train):
            raise ValueError("training.objective 'lips' trains the lip encoder on its envelope: it needs "
                             f"lip_encoder.envelope_bands > 0 (got {bands}) and lip_encoder.train true")
        self._check_enhancement_family()
        self._check_phone_loss()
        self._check_frontend_cache()
        if self.training.objective == "guided" and (not self.training.teacher or self.training.teacher_guidance <= 0):
            raise ValueError("training.objective 'guided' distils a teacher's guidance: set training.teacher (a model "
                             f"folder) and a positive training.teacher_guidance (got {self.training.teacher_guidance})")
        if self.score_model.pretrained and self.training.objective not in ("joint", "lips"):
            raise ValueError("score_model.pretrained starts a score network from a trained one: objectives joint and "
                             f"lips (got {self.training.objective}; guided starts from its teacher)")
        if self.training.objective == "vae" and self.vae.audio_visual and not self.lip_encoder.pretrained:
            raise ValueError("an audio-visual VAE (training.objective vae, vae.audio_visual true) reads a trained "
                             "lip encoder: set lip_encoder.pretrained (e.g. models/v2s)")
        if self.lip_encoder.output_dim != self.score_model.cond_channels:
            raise ValueError(
                f"lip_encoder.output_dim ({self.lip_encoder.output_dim}) must equal "
                f"score_model.cond_channels ({self.score_model.cond_channels})"
            )

    def _check_phone_loss(self) -> None:
        """A phone loss names phonemes in the lips' channels after the envelope's, on lips that train."""
        if not self.training.phone_loss_weight:
            return
        bands, dim = self.lip_encoder.envelope_bands, self.lip_encoder.output_dim
        if self.training.objective not in ("joint", "lips") or not self.lip_encoder.train or bands >= dim:
            raise ValueError(
                "training.phone_loss_weight trains the lips' channels after the envelope's to name phonemes: it needs "
                f"training.objective joint or lips (got {self.training.objective}), lip_encoder.train true and "
                f"lip_encoder.envelope_bands ({bands}) below output_dim ({dim})")

    def _check_frontend_cache(self) -> None:
        """Cached front-end features need a front-end that does not train and crops without pixel augmentation."""
        if not self.training.cache_frontend_features:
            return
        if self.lip_encoder.train and not self.lip_encoder.freeze_frontend:
            raise ValueError("training.cache_frontend_features stores the visual front-end's features once: it needs "
                             "lip_encoder.freeze_frontend true (or lip_encoder.train false)")
        data = self.data
        augmented = [name for name, on in (("data.random_crop", data.random_crop),
                                           ("data.time_mask_prob", data.time_mask_prob > 0),
                                           ("data.geometric_jitter", data.geometric_jitter > 0),
                                           ("data.exposure_jitter", data.exposure_jitter > 0)) if on]
        if augmented:
            raise ValueError("training.cache_frontend_features stores each clip's features once (centre crop, as "
                             f"seen and mirrored), so pixel augmentations cannot apply: set {', '.join(augmented)} "
                             "to false/0 (data.hflip_prob still applies)")

    def _check_enhancement_family(self) -> None:
        """The exported folder's default method must run on what trains: a VAE's on a VAE."""
        from avdiff.extension_points import registry

        family = registry("posterior methods").get(self.enhancement.method).method_class.family
        wanted = "vae" if self.training.objective == "vae" else "diffusion"
        if family != wanted:
            raise ValueError(f"enhancement.method {self.enhancement.method!r} runs on a {family} model, but this config "
                             f"trains a {wanted} model (training.objective {self.training.objective})")
