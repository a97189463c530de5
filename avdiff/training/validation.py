"""Validation during training: loss with and without the lips, and a short video-to-speech pass.

The loss is computed on the first validation items with fixed noise, once with the lip
condition and once with the null condition, so `val/loss_av` below `val/loss_audio_only`
shows the network uses the lips. The main process then generates a few clips from their
mouth video with the EMA weights and logs audio and spectrogram images to TensorBoard.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
from accelerate import Accelerator
from torch import Tensor

from avdiff.config.schema import AVDiffConfig
from avdiff.data.crops import AVCropDataset, collate_crops
from avdiff.diffusion.denoiser import guided_denoiser
from avdiff.diffusion.noise import make_generators
from avdiff.diffusion.samplers import sample_from_noise
from avdiff.training.model import AVDiffusionModel


def spectrogram_image(spec: Tensor) -> Tensor:
    """(2, F, T) compressed spectrogram -> (1, F, T) image in [0, 1], low frequencies at the bottom."""
    magnitude = torch.view_as_complex(spec.movedim(0, -1).contiguous().float()).abs()
    image = (magnitude.clamp_min(1e-4).log10() + 4) / 4.5
    return image.clamp(0, 1).flip(0).unsqueeze(0)


@torch.no_grad()
def validation_loss(accelerator: Accelerator, model: AVDiffusionModel, dataset: AVCropDataset,
                    config: AVDiffConfig) -> dict[str, float]:
    """Mean loss over the first validation batches, with the lips and with the null condition."""
    tc = config.training
    count = min(len(dataset), tc.validation_batches * tc.batch_size * accelerator.num_processes)
    indices = list(range(accelerator.process_index, count, accelerator.num_processes))
    totals = torch.zeros(3, device=accelerator.device)
    for start in range(0, len(indices), tc.batch_size):
        batch = collate_crops([dataset[i] for i in indices[start : start + tc.batch_size]])
        args = [batch[k].to(accelerator.device) for k in ("audio", "video", "video_valid", "face_ok", "frame_mask")]
        with accelerator.autocast():
            av = model(*args, torch.Generator().manual_seed(start), drop_conditions=False)
            args[3] = torch.zeros_like(args[3])  # no usable face anywhere: the audio-only prior
            audio_only = model(*args, torch.Generator().manual_seed(start), drop_conditions=False)
        totals += torch.stack([av.per_item.sum(), audio_only.per_item.sum(),
                               torch.tensor(float(len(av.per_item)), device=accelerator.device)])
    totals = accelerator.reduce(totals, reduction="sum")
    items = max(float(totals[2]), 1.0)
    return {"val/loss_av": float(totals[0]) / items, "val/loss_audio_only": float(totals[1]) / items}


@torch.no_grad()
def generate_examples(model: AVDiffusionModel, dataset: AVCropDataset, config: AVDiffConfig,
                      device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Video-to-speech for the first validation clips: (reference audio, generated audio, generated spec)."""
    count = min(config.training.validation_samples, len(dataset))
    batch = collate_crops([dataset[i] for i in range(count)])
    spec_ref = model.transform.encode(batch["audio"].to(device))
    cond, cond_mask = model.condition(batch["video"].to(device), batch["video_valid"].to(device),
                                      batch["face_ok"].to(device), spec_ref.shape[-1])
    sampler = replace(config.sampler, steps=config.training.validation_sampler_steps)
    denoiser = guided_denoiser(model.denoiser, cond, cond_mask, sampler.guidance_scale)
    spec = sample_from_noise(sampler, denoiser, model.denoiser.formulation, spec_ref.shape,
                             make_generators(range(count)), device).sample
    audio = model.transform.decode(spec, batch["audio"].shape[-1])
    return batch["audio"], audio.cpu(), spec.cpu()


def log_validation(accelerator: Accelerator, model: AVDiffusionModel, dataset: AVCropDataset,
                   config: AVDiffConfig, step: int, logger: logging.Logger) -> None:
    """Log the validation losses (all processes) and example audio/images (main process)."""
    model.eval()
    scalars = validation_loss(accelerator, model, dataset, config)
    logger.info("step %d: validation loss %.4f with lips, %.4f audio-only", step,
                scalars["val/loss_av"], scalars["val/loss_audio_only"])
    accelerator.log(scalars, step=step)
    if not accelerator.is_main_process or config.training.validation_samples < 1:
        return
    with accelerator.autocast():
        reference, generated, spec = generate_examples(model, dataset, config, accelerator.device)
    tracker = accelerator.get_tracker("tensorboard", unwrap=True)
    if not hasattr(tracker, "add_audio"):  # TensorBoard is not installed: scalars only
        return
    rate = config.spectrogram.sample_rate
    for i in range(len(generated)):
        peak = generated[i].abs().max().clamp_min(1e-6)
        tracker.add_audio(f"val/{i}/generated", (generated[i] / peak * 0.9).unsqueeze(0), step, sample_rate=rate)
        tracker.add_image(f"val/{i}/generated_spectrogram", spectrogram_image(spec[i]), step)
        if step == config.training.validate_every:  # the references never change: log them once
            tracker.add_audio(f"val/{i}/reference", reference[i].unsqueeze(0), step, sample_rate=rate)
            tracker.add_image(f"val/{i}/reference_spectrogram",
                              spectrogram_image(model.transform.encode(reference[i : i + 1].to(accelerator.device))[0].cpu()), step)
