"""The training loop: Accelerate on one CPU, one GPU, many GPUs or many machines.

One optimizer step = `gradient_accumulation_steps` micro-batches of aligned crops per process.
Each process draws its own items (`ShardedEpochSampler`), its own noise and condition dropout
(a generator seeded with seed + rank), and DDP averages the gradients. Non-finite losses or
gradients skip the step; `max_nonfinite_steps` in a row stop the run, leaving the last good
checkpoint untouched. SIGTERM / Ctrl-C finish the current step, save a checkpoint and exit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.config.loader import save_config
from avdiff.config.schema import AVDiffConfig
from avdiff.data.crops import AVCropDataset, collate_crops
from avdiff.data.sampler import ShardedEpochSampler
from avdiff.diffusion.formulation import build_formulation
from avdiff.errors import AVDiffError, ConfigError
from avdiff.pipeline.model_folder import ModelComponents, save_model_folder
from avdiff.training import checkpoints as ckpt
from avdiff.training.ema import ExponentialMovingAverage
from avdiff.training.model import AVDiffusionModel
from avdiff.training.schedule import lr_multiplier
from avdiff.training.validation import log_validation

logger = logging.getLogger("avdiff.train")

SIGMA_BANDS = (0.01, 0.1, 1.0, 10.0)  # loss is also logged per band of noise levels between these


class TrainingDiverged(AVDiffError):
    """Too many non-finite steps in a row."""


@dataclass
class TrainResult:
    """How a run ended: `finished`, `interrupted` (signal; checkpoint saved)."""

    status: str
    step: int
    output_dir: Path
    model_dir: Path | None


def resolve_mixed_precision(setting: str, cpu: bool) -> str:
    if setting != "auto":
        return setting
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(config: AVDiffConfig, output_dir: Path, cpu: bool) -> Accelerator:
    return Accelerator(
        cpu=cpu,
        mixed_precision=resolve_mixed_precision(config.training.mixed_precision, cpu),
        gradient_accumulation_steps=config.training.gradient_accumulation_steps,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )


def setup_logging(output_dir: Path, is_main: bool) -> None:
    """INFO to stderr and `train.log` on the main process, warnings elsewhere."""
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    logger.handlers.clear()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    stream = logging.StreamHandler()
    stream.setFormatter(formatter)
    logger.addHandler(stream)
    if is_main:
        file_handler = logging.FileHandler(output_dir / "train.log")
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    logger.propagate = False
    logging.getLogger("avdiff.training.checkpoints").handlers = logger.handlers


class StopRequest:
    """Set by SIGTERM / SIGINT; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a notebook launcher)
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("received %s: finishing this step, saving a checkpoint, then exiting",
                       signal.Signals(signum).name)


def full_parameters(accelerator: Accelerator, model: torch.nn.Module) -> Any:
    """Under FSDP, a context in which every process sees the whole parameters (for the EMA)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        from torch.distributed.fsdp import FullyShardedDataParallel

        return FullyShardedDataParallel.summon_full_params(model, writeback=False)
    return contextlib.nullcontext()


def any_process(accelerator: Accelerator, flag: bool) -> bool:
    """True on every process if `flag` is True on any (so all ranks act together)."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


def measure_sigma_data(
    accelerator: Accelerator, dataset: AVCropDataset, transform: SpectrogramTransform, config: AVDiffConfig
) -> float:
    """RMS of the compressed spectrogram over the first batches of every process's training data."""
    sampler = ShardedEpochSampler(len(dataset), config.training.seed + 1, accelerator.process_index, accelerator.num_processes)
    loader = DataLoader(dataset, batch_size=config.training.batch_size, sampler=sampler, collate_fn=collate_crops)
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    used = 0
    for number, batch in enumerate(loader):
        if number >= config.training.sigma_data_batches:
            break
        used = number + 1
        spec = transform.encode(batch["audio"].to(accelerator.device))
        mask = batch["frame_mask"].to(accelerator.device)[:, None, None, :].expand_as(spec)
        total[0] += spec.double().square()[mask].sum()
        total[1] += mask.sum()
    total = accelerator.reduce(total, reduction="sum")
    if total[1] == 0 or total[0] == 0:
        raise AVDiffError("cannot measure sigma_data: the training audio is empty or silent")
    sigma_data = math.sqrt(float(total[0] / total[1]))
    logger.info("measured sigma_data = %.5f over %d batches per process", sigma_data, used)
    return sigma_data


def train(
    config: AVDiffConfig,
    output_dir: str | Path,
    max_steps: int | None = None,
    resume: str | None = None,
    cpu: bool = False,
    record_data_order: bool = False,
    max_minutes: float | None = None,
) -> TrainResult:
    """Train the lip encoder and the score network jointly; see the module docstring.

    `max_minutes` bounds the wall-clock time: the run then ends early as if it had reached
    `max_steps` (checkpoint and export), for demos with a time budget.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tc = config.training
    max_steps = max_steps if max_steps is not None else tc.max_steps
    if not config.data.train_manifest:
        raise ConfigError("data.train_manifest is not set: name a prepared manifest, e.g. --set data.train_manifest=DATA/train.jsonl")

    accelerator = make_accelerator(config, output_dir, cpu)
    setup_logging(output_dir, accelerator.is_main_process)
    rank, world = accelerator.process_index, accelerator.num_processes
    device = accelerator.device
    logger.info("world size %d, device %s, mixed precision %s", world, device, accelerator.mixed_precision)
    if accelerator.is_main_process:
        save_config(config, output_dir / "config.yaml", header="resolved config of this training run")

    # ---------------------------------------------------------------- data
    transform = SpectrogramTransform(config.spectrogram)
    train_set = AVCropDataset(config.data.train_manifest, config.data, config.spectrogram, train=True)
    valid_set = (AVCropDataset(config.data.valid_manifest, config.data, config.spectrogram, train=False)
                 if config.data.valid_manifest else None)
    sampler = ShardedEpochSampler(len(train_set), tc.seed, rank, world)
    if sampler.items_per_rank < tc.batch_size:
        raise ConfigError(f"{config.data.train_manifest}: {len(train_set)} items give each of {world} processes "
                          f"{sampler.items_per_rank}, fewer than training.batch_size={tc.batch_size}")
    loader = DataLoader(train_set, batch_size=tc.batch_size, sampler=sampler, collate_fn=collate_crops,
                        num_workers=config.data.num_workers, drop_last=True,
                        persistent_workers=config.data.num_workers > 0, pin_memory=device.type == "cuda")

    # ---------------------------------------------------------------- state
    state = ckpt.TrainerState(world_size=world)
    resume_dir = ckpt.resolve_resume(output_dir, resume) if resume else None
    if resume_dir is not None:
        state = ckpt.read_state(resume_dir)
        if state.world_size != world:
            raise ckpt.CheckpointError(f"{resume_dir} was saved by {state.world_size} processes; resume with the "
                                       f"same number (now {world}) so every rank continues its own data exactly")
        sigma_data = state.sigma_data
    elif config.diffusion.sigma_data is not None:
        sigma_data = config.diffusion.sigma_data
    else:
        sigma_data = measure_sigma_data(accelerator, train_set, transform, config)
    state.sigma_data = sigma_data
    formulation = build_formulation(config.diffusion, sigma_data=sigma_data)

    # ---------------------------------------------------------------- model and optimisation
    torch.manual_seed(tc.seed)
    model = AVDiffusionModel.from_config(config, formulation)
    trainable = [p for p in model.parameters() if p.requires_grad]
    logger.info("parameters: lip encoder %.2f M, score network %.2f M, trainable %.2f M",
                sum(p.numel() for p in model.lip_encoder.parameters()) / 1e6,
                sum(p.numel() for p in model.score_model.parameters()) / 1e6,
                sum(p.numel() for p in trainable) / 1e6)
    optimizer = torch.optim.AdamW(trainable, lr=tc.learning_rate, betas=(tc.adam_beta1, tc.adam_beta2),
                                  weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(tc.lr_schedule, tc.warmup_steps, max_steps))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    unwrapped: AVDiffusionModel = accelerator.unwrap_model(model)
    with full_parameters(accelerator, model):
        ema = ExponentialMovingAverage(unwrapped, tc.ema_decay)
    generator = torch.Generator().manual_seed(tc.seed * 1009 + rank)

    if resume_dir is not None:
        accelerator.load_state(str(resume_dir))
        ema.load_state_dict(load_file(str(resume_dir / ckpt.EMA_NAME), device=str(device)))
        ckpt.restore_rng(resume_dir, rank, generator)
        logger.info("resumed from %s: step %d, epoch %d, item %d of %d in this epoch; optimizer, scheduler, "
                    "scaler, EMA, RNG and data position restored", resume_dir, state.step, state.epoch,
                    state.position, sampler.items_per_rank)

    if accelerator.is_main_process:
        accelerator.init_trackers("avdiff", config={"max_steps": max_steps, "batch_size": tc.batch_size,
                                                    "world_size": world, "learning_rate": tc.learning_rate})
    seen_ids: list[str] = []

    saved_at = state.step if resume_dir is not None else -1

    def save_checkpoint() -> Path:
        nonlocal saved_at
        saved_at = state.step
        tmp = ckpt.temporary_dir(output_dir, state.step)
        if accelerator.is_main_process and tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        ckpt.save_rng(tmp, rank, generator)
        accelerator.wait_for_everyone()
        final = ckpt.checkpoint_dir(output_dir, state.step)
        if accelerator.is_main_process:
            save_file(ema.state_dict(), str(tmp / ckpt.EMA_NAME))
            ckpt.write_state(tmp, state)
            final = ckpt.finalize(output_dir, state.step, tc.keep_checkpoints)
            logger.info("saved %s", final)
        accelerator.wait_for_everyone()
        return final

    def export_model() -> Path:
        components = ModelComponents(
            lip_encoder=ema.module.lip_encoder, score_model=ema.module.score_model, formulation=formulation,
            spectrogram=config.spectrogram, sampler=config.sampler, crop_size=config.data.crop_size)
        path = save_model_folder(components, output_dir / "model")
        save_config(config, path / "config.yaml", header="resolved config of the training run that made this model")
        logger.info("exported the EMA model to %s", path)
        return path

    # ---------------------------------------------------------------- loop
    status = "finished"
    progress = tqdm(total=max_steps, initial=state.step, desc="train", disable=not accelerator.is_local_main_process,
                    dynamic_ncols=True)
    window: dict[str, list[float]] = defaultdict(list)
    window_start, window_items = time.perf_counter(), 0
    micro_in_step = 0
    deadline = time.monotonic() + 60 * max_minutes if max_minutes else None
    with StopRequest() as stop:
        while state.step < max_steps and status == "finished":
            sampler.set_position(state.epoch, state.position)
            for batch in loader:
                model.train()
                if record_data_order:
                    seen_ids.extend(batch["id"])
                with accelerator.accumulate(model):
                    out = model(batch["audio"].to(device), batch["video"].to(device), batch["video_valid"].to(device),
                                batch["face_ok"].to(device), batch["frame_mask"].to(device), generator)
                    loss = out.loss
                    loss_finite = torch.isfinite(loss.detach())
                    accelerator.backward(torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0)
                                         if not bool(loss_finite) else loss)
                    window["loss_nonfinite"].append(0.0 if bool(loss_finite) else 1.0)
                    if bool(loss_finite):
                        window["loss"].append(float(loss.detach()))
                        for sigma, value in zip(out.sigma.tolist(), out.per_item.tolist()):
                            band = sum(sigma >= edge for edge in SIGMA_BANDS)
                            window[f"loss_band{band}"].append(value)
                    micro_in_step += 1
                    state.position += tc.batch_size
                    window_items += tc.batch_size * world
                    if accelerator.sync_gradients:
                        bad_loss = any_process(accelerator, not bool(loss_finite) or any(window["loss_nonfinite"][-micro_in_step:]))
                        grad_norm = accelerator.clip_grad_norm_(trainable, tc.max_grad_norm)
                        grad_norm = float(grad_norm) if grad_norm is not None else 0.0
                        bad_grad = not math.isfinite(grad_norm) and accelerator.mixed_precision != "fp16"
                        if bad_loss or bad_grad:
                            optimizer.zero_grad(set_to_none=True)
                            state.nonfinite_streak += 1
                            logger.warning("step %d: non-finite %s; step skipped (%d in a row, limit %d)",
                                           state.step + 1, "loss" if bad_loss else f"gradient norm {grad_norm}",
                                           state.nonfinite_streak, tc.max_nonfinite_steps)
                            if accelerator.is_main_process:
                                accelerator.log({"train/nonfinite_skipped": state.nonfinite_streak}, step=state.step)
                            if state.nonfinite_streak >= tc.max_nonfinite_steps:
                                latest = ckpt.find_latest_checkpoint(output_dir)
                                raise TrainingDiverged(
                                    f"{state.nonfinite_streak} non-finite steps in a row at step {state.step}: "
                                    f"stopping. The last good checkpoint is {latest or 'none (no checkpoint saved yet)'}; "
                                    "lower training.learning_rate or check the data for NaNs, then --resume latest")
                        else:
                            optimizer.step()
                            scheduler.step()
                            optimizer.zero_grad(set_to_none=True)
                            with full_parameters(accelerator, model):
                                ema.update(unwrapped)
                            state.nonfinite_streak = 0
                            window["grad_norm"].append(grad_norm)
                        micro_in_step = 0
                        state.step += 1
                        progress.update(1)
                        if state.step % tc.log_every == 0 or state.step == max_steps:
                            elapsed = time.perf_counter() - window_start
                            scalars = {f"train/{k}": sum(v) / len(v) for k, v in window.items() if v}
                            scalars["train/lr"] = scheduler.get_last_lr()[0]
                            scalars["train/samples_per_s"] = window_items / max(elapsed, 1e-9)
                            if device.type == "cuda":
                                scalars["train/gpu_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
                            accelerator.log(scalars, step=state.step)
                            progress.set_postfix(loss=f"{scalars.get('train/loss', float('nan')):.4f}",
                                                 lr=f"{scalars['train/lr']:.2e}")
                            window.clear()
                            window_start, window_items = time.perf_counter(), 0
                        if valid_set is not None and tc.validate_every and state.step % tc.validate_every == 0:
                            log_validation(accelerator, ema.module, valid_set, config, state.step, logger)
                        if state.step % tc.checkpoint_every == 0:
                            if state.nonfinite_streak:
                                logger.warning("step %d: no checkpoint while steps are non-finite", state.step)
                            else:
                                save_checkpoint()
                        if any_process(accelerator, stop.requested):
                            if saved_at != state.step:
                                save_checkpoint()
                            status = "interrupted"
                            break
                        if deadline is not None and any_process(accelerator, time.monotonic() > deadline):
                            logger.info("time budget of %.1f minutes reached at step %d", max_minutes, state.step)
                            max_steps = state.step
                        if state.step >= max_steps:
                            break
            else:  # the epoch ran out (not a break): the next one starts from its first item
                state.epoch += 1
                state.position = 0
    progress.close()

    model_dir = None
    if status == "finished":
        if saved_at != state.step:
            save_checkpoint()
        if accelerator.is_main_process:
            model_dir = export_model()
    write_rank_report(output_dir, accelerator, unwrapped, state, seen_ids if record_data_order else None)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    logger.info("%s at step %d", status, state.step)
    return TrainResult(status=status, step=state.step, output_dir=output_dir, model_dir=model_dir or (output_dir / "model"))


def parameter_checksum(module: torch.nn.Module) -> str:
    """A short fingerprint of the parameters (equal on all ranks <=> equal checksums).

    Buffers are left out: BatchNorm running statistics are per process under DDP (rank 0's
    are broadcast at each forward), so they legitimately differ after the last step.
    """
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def write_rank_report(output_dir: Path, accelerator: Accelerator, model: torch.nn.Module,
                      state: ckpt.TrainerState, seen_ids: list[str] | None) -> None:
    """`ranks/rank{r}.json`: world size, final step, a weight checksum and (optionally) the ids seen."""
    report: dict[str, Any] = {"rank": accelerator.process_index, "world_size": accelerator.num_processes,
                              "step": state.step, "parameter_checksum": parameter_checksum(model)}
    if seen_ids is not None:
        report["seen_ids"] = seen_ids
    folder = output_dir / "ranks"
    folder.mkdir(exist_ok=True)
    (folder / f"rank{accelerator.process_index}.json").write_text(json.dumps(report, indent=1) + "\n")
