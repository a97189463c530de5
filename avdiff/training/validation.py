"""Validation during training: loss with and without the lips, and a short video-to-speech pass.

The loss is computed on validation items spread over the set with fixed noise: audio-visual
items once with the lip condition and once with the null condition (`val/loss_av` below
`val/loss_audio_only` shows the network uses the lips), audio-only items with the null
condition (`val/loss_speech`). The main process then generates a few clips from the mouth
video of audio-visual items with the EMA weights and logs audio and spectrogram images.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
from accelerate import Accelerator
from torch import Tensor

from avdiff.config.schema import AVDiffConfig
from avdiff.data.crops import AVCropDataset, collate_crops
from avdiff.data.manifest import has_video
from avdiff.diffusion.denoiser import guided_denoiser
from avdiff.diffusion.noise import make_generators
from avdiff.diffusion.samplers import sample_from_noise
from avdiff.training.model import AVDiffusionModel


def spectrogram_image(spec: Tensor) -> Tensor:
    """(2, F, T) compressed spectrogram -> (1, F, T) image in [0, 1], low frequencies at the bottom."""
    magnitude = torch.view_as_complex(spec.movedim(0, -1).contiguous().float()).abs()
    image = (magnitude.clamp_min(1e-4).log10() + 4) / 4.5
    return image.clamp(0, 1).flip(0).unsqueeze(0)


def validation_indices(dataset: AVCropDataset, count: int) -> list[int]:
    """`count` items spread evenly over the validation set (every manifest of a mixed one)."""
    count = min(count, len(dataset))
    return sorted({k * len(dataset) // count for k in range(count)})


@torch.no_grad()
def validation_loss(accelerator: Accelerator, model: AVDiffusionModel, dataset: AVCropDataset,
                    config: AVDiffConfig) -> dict[str, float]:
    """Mean losses over validation batches: audio-visual items with the lips (`val/loss_av`) and
    with the null condition (`val/loss_audio_only`), audio-only items (`val/loss_speech`), and the
    error of the lips' log-mel envelope (`val/envelope`, when the encoder predicts one) and the phone
    loss (`val/phones`, when training names phonemes)."""
    tc = config.training
    chosen = validation_indices(dataset, tc.validation_batches * tc.batch_size * accelerator.num_processes)
    indices = chosen[accelerator.process_index :: accelerator.num_processes]
    # sums: AV with lips, AV with the null condition, AV items, audio-only items' loss, audio-only items,
    # the lips' envelope error and phone loss (weighted by AV items)
    totals = torch.zeros(7, dtype=torch.float64, device=accelerator.device)
    scored_envelope = scored_phones = False  # a speech VAE reads the lips but scores no envelope
    for start in range(0, len(indices), tc.batch_size):
        batch = collate_crops([dataset[i] for i in indices[start : start + tc.batch_size]])
        args = [batch[k].to(accelerator.device) for k in ("audio", "video", "video_valid", "face_ok", "frame_mask")]
        video = batch["has_video"].to(accelerator.device)
        labels = {"phones": batch["phones"].to(accelerator.device)} if "phones" in batch else {}
        with accelerator.autocast():
            out = model(*args, torch.Generator().manual_seed(start), drop_conditions=False, **labels)
            with_lips, envelope, phones = out.per_item, out.auxiliary.get("envelope"), out.auxiliary.get("phones")
            scored_envelope = scored_envelope or envelope is not None
            scored_phones = scored_phones or phones is not None
            args[3] = torch.zeros_like(args[3])  # no usable face anywhere: the audio-only prior
            masked = model(*args, torch.Generator().manual_seed(start), drop_conditions=False).per_item
        totals += torch.stack([with_lips[video].sum(), masked[video].sum(), video.sum(),
                               masked[~video].sum(), (~video).sum(),
                               (envelope if envelope is not None else torch.zeros(())) * video.sum(),
                               (phones if phones is not None else torch.zeros(())) * video.sum()]).double()
    totals = accelerator.reduce(totals, reduction="sum").tolist()
    scalars = {}
    if totals[2] > 0:
        scalars.update({"val/loss_av": totals[0] / totals[2], "val/loss_audio_only": totals[1] / totals[2]})
        if model.lip_encoder.config.envelope_bands and scored_envelope:
            scalars["val/envelope"] = totals[5] / totals[2]
        if scored_phones:
            scalars["val/phones"] = totals[6] / totals[2]
    if totals[4] > 0:
        scalars["val/loss_speech"] = totals[3] / totals[4]
    return scalars


@torch.no_grad()
def generate_examples(model: AVDiffusionModel, dataset: AVCropDataset, config: AVDiffConfig,
                      device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Video-to-speech for the first validation clips: (reference audio, generated audio, generated spec)."""
    with_video = [i for i, item in enumerate(dataset.items) if has_video(item)][: config.training.validation_samples]
    count = len(with_video)
    if count == 0:  # audio-only data: nothing to generate from
        return torch.zeros(0), torch.zeros(0), torch.zeros(0)
    batch = collate_crops([dataset[i] for i in with_video])
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
    losses = ", ".join(f"{name.removeprefix('val/')} {value:.4f}" for name, value in scalars.items())
    logger.info("step %d: validation %s", step, losses)
    accelerator.log(scalars, step=step)
    if not accelerator.is_main_process or config.training.validation_samples < 1 or not hasattr(model, "denoiser"):
        return  # nothing to generate from (a speech VAE enhances, it does not generate)
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
