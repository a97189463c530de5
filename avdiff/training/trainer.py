"""The training loop: Accelerate on one CPU, one GPU, many GPUs or many machines.

One optimizer step = `gradient_accumulation_steps` micro-batches of aligned crops per process.
Each process draws its own items (`ShardedEpochSampler`), its own noise and condition dropout
(a generator seeded with seed + rank), and DDP averages the gradients. Non-finite losses or
gradients skip the step; `max_nonfinite_steps` in a row stop the run, leaving the last good
checkpoint untouched. SIGTERM / Ctrl-C finish the current step, save a checkpoint and exit.

`Trainer` holds one run: `train_on` (a micro-batch, and `step` when the accumulation is
complete), then after each step `log`, `validate`, `checkpoint` and the stop policy
(`should_stop`); `run` loops over the epochs and ends with `export`. `train(...)` is the entry point.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import shutil
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
from avdiff.data.frontend_cache import frontend_cache
from avdiff.data.sampler import ShardedEpochSampler
from avdiff.diffusion.formulation import build_formulation, sigma_data_from_energy, spectrogram_energy
from avdiff.diffusion.loss import LossOutput
from avdiff.errors import AVDiffError, ConfigError
from avdiff.training import checkpoints as ckpt
from avdiff.training import safe_state
from avdiff.training.ema import ExponentialMovingAverage
from avdiff.training.export import CONFIG_NAME, export_model, training_model
from avdiff.training.guidance_distillation import teacher_sigma_data
from avdiff.training.starting_weights import PRETRAINED_KEY, sigma_data_of
from avdiff.training.launcher import follow_launcher
from avdiff.training.run_lock import RunLock
from avdiff.training.schedule import lr_multiplier
from avdiff.training.validation import log_validation

logger = logging.getLogger("avdiff.train")

FRONTEND_CACHE_DIR = "frontend-features"  # under the output folder, unless training.frontend_cache_dir names one
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
    """`auto` -> bf16 on a GPU that supports it, else no; other settings as given."""
    if setting != "auto":
        return setting
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(config: AVDiffConfig, output_dir: Path, cpu: bool) -> Accelerator:
    """The run's Accelerator: precision, gradient accumulation and TensorBoard logging in DIR/logs."""
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
    for helper in ("avdiff.training.checkpoints", "avdiff.data.frontend_cache"):  # their lines go where the run's go
        logging.getLogger(helper).handlers = logger.handlers
        logging.getLogger(helper).setLevel(logger.level)
        logging.getLogger(helper).propagate = False


class StopRequest:
    """Set by SIGTERM / SIGINT; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        """Nothing requested yet; handlers are installed by `with`."""
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        """Install the SIGTERM / SIGINT handlers (where signals can be handled)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a notebook launcher)
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        """Restore the previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        """Note the request (the loop stops after this step); a second SIGINT raises KeyboardInterrupt."""
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


def measure_training_sigma_data(
    accelerator: Accelerator, dataset: AVCropDataset, transform: SpectrogramTransform, config: AVDiffConfig
) -> float:
    """sigma_data over the first batches of every process's training crops (the maths: the formulation's)."""
    tc = config.training
    sampler = ShardedEpochSampler(len(dataset), tc.seed + 1, accelerator.process_index, accelerator.num_processes)
    loader = DataLoader(dataset, batch_size=tc.batch_size, sampler=sampler, collate_fn=collate_crops)
    energy = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    used = 0
    for batch in itertools.islice(loader, tc.sigma_data_batches):
        spec = transform.encode(batch["audio"].to(accelerator.device))
        energy += spectrogram_energy(spec, batch["frame_mask"].to(accelerator.device))
        used += 1
    sigma_data = sigma_data_from_energy(accelerator.reduce(energy, reduction="sum"))
    logger.info("measured sigma_data = %.5f over %d batches per process", sigma_data, used)
    return sigma_data


class LogWindow:
    """The scalars gathered between two log lines, so each line reports means over its window."""

    def __init__(self) -> None:
        """An empty window starting now."""
        self.values: dict[str, list[float]] = defaultdict(list)
        self.start, self.items = time.perf_counter(), 0

    def add_micro_batch(self, out: LossOutput, finite: bool, items: int) -> None:
        """Record a micro-batch's loss (or that it was non-finite), its auxiliary terms and each
        item's denoising loss in its sigma band."""
        self.values["loss_nonfinite"].append(0.0 if finite else 1.0)
        if finite:
            self.values["loss"].append(float(out.loss.detach()))
            for name, value in out.auxiliary.items():
                self.values[f"loss_{name}"].append(float(value))
            for sigma, value in zip(out.sigma.tolist(), out.per_item.tolist()):
                band = sum(sigma >= edge for edge in SIGMA_BANDS)
                self.values[f"loss_band{band}"].append(value)
        self.items += items

    def add_grad_norm(self, grad_norm: float) -> None:
        """Record the gradient norm of a step that was taken."""
        self.values["grad_norm"].append(grad_norm)

    def scalars(self, lr: float, device: torch.device) -> dict[str, float]:
        """The window's means as `train/...` scalars, with the learning rate, samples/s and peak GPU memory."""
        elapsed = time.perf_counter() - self.start
        scalars = {f"train/{k}": sum(v) / len(v) for k, v in self.values.items() if v}
        scalars["train/lr"] = lr
        scalars["train/samples_per_s"] = self.items / max(elapsed, 1e-9)
        if device.type == "cuda":
            scalars["train/gpu_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        return scalars

    def reset(self) -> None:
        """Start a new window (after a log line)."""
        self.values.clear()
        self.start, self.items = time.perf_counter(), 0


class Trainer:
    """One training run: set up in `__init__`, advanced a micro-batch at a time, ended by `run`."""

    def __init__(self, config: AVDiffConfig, output_dir: str | Path, max_steps: int | None = None,
                 resume: str | None = None, cpu: bool = False, record_data_order: bool = False,
                 max_minutes: float | None = None) -> None:
        """Accelerator, data, model, optimizer and state (restored from `resume`); arguments as `train`'s."""
        self.config, self.tc = config, config.training
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.max_steps = max_steps if max_steps is not None else self.tc.max_steps
        self.max_minutes, self.record_data_order = max_minutes, record_data_order
        if not config.data.train_manifest:
            raise ConfigError("data.train_manifest is not set: name a prepared manifest, "
                              "e.g. --set data.train_manifest=DATA/train.jsonl")
        self.accelerator = accelerator = make_accelerator(config, self.output_dir, cpu)
        setup_logging(self.output_dir, accelerator.is_main_process)
        self.rank, self.world, self.device = accelerator.process_index, accelerator.num_processes, accelerator.device
        logger.info("world size %d, device %s, mixed precision %s", self.world, self.device, accelerator.mixed_precision)
        if accelerator.is_main_process:
            save_config(config, self.output_dir / CONFIG_NAME, header="resolved config of this training run")
        self._build_data()
        resume_dir = self._resume_dir(resume)
        self.state = self._initial_state(resume_dir)
        self.state.audio_visual = self.train_set.has_video  # recorded in every checkpoint, for `avdiff export`
        self.formulation = build_formulation(config.diffusion, sigma_data=self.state.sigma_data)
        self._build_model()
        if self.tc.cache_frontend_features:
            self._cache_frontend_features()
        if resume_dir is not None:
            self._restore(resume_dir)
        if accelerator.is_main_process:
            accelerator.init_trackers("avdiff", config={"max_steps": self.max_steps, "batch_size": self.tc.batch_size,
                                                        "world_size": self.world, "learning_rate": self.tc.learning_rate})
        self.seen_ids: list[str] = []
        self.saved_at = self.state.step if resume_dir is not None else -1  # the step of the last checkpoint
        self.status = "finished"
        self.loss_was_nonfinite = False  # in a micro-batch of the step being accumulated
        self.window = LogWindow()
        self.progress: Any = None
        self.deadline: float | None = None

    def _resume_dir(self, resume: str | None) -> Path | None:
        """The checkpoint to continue from: none, `auto` (the newest if any, saying which), `latest` or a folder."""
        if resume is None:
            return None
        if resume == ckpt.AUTO:
            found, line = ckpt.resolve_auto(self.output_dir)
            logger.info(line)
            return found
        return ckpt.resolve_resume(self.output_dir, resume)

    def _build_data(self) -> None:
        """The training and validation crops, and this process's sharded, resumable loader."""
        config, tc = self.config, self.tc
        self.transform = SpectrogramTransform(config.spectrogram)
        phones = bool(tc.phone_loss_weight)  # crops carry the phoneme of each video frame
        self.train_set = AVCropDataset(config.data.train_manifest, config.data, config.spectrogram, train=True,
                                       phone_labels=phones)
        self.valid_set = (AVCropDataset(config.data.valid_manifest, config.data, config.spectrogram, train=False,
                                        phone_labels=phones)
                          if config.data.valid_manifest else None)
        self.sampler = ShardedEpochSampler(len(self.train_set), tc.seed, self.rank, self.world,
                                           weights=self.train_set.sampling_weights(config.data.train_weights))
        if self.sampler.items_per_rank < tc.batch_size:
            raise ConfigError(f"{config.data.train_manifest}: {len(self.train_set)} items give each of {self.world} "
                              f"processes {self.sampler.items_per_rank}, fewer than training.batch_size={tc.batch_size}")
        self.loader = DataLoader(self.train_set, batch_size=tc.batch_size, sampler=self.sampler,
                                 collate_fn=collate_crops, num_workers=config.data.num_workers, drop_last=True,
                                 persistent_workers=config.data.num_workers > 0, pin_memory=self.device.type == "cuda")

    def _initial_state(self, resume_dir: Path | None) -> ckpt.TrainerState:
        """The checkpoint's state on resume, else a fresh one whose sigma_data is set or measured."""
        if resume_dir is not None:
            state = ckpt.read_state(resume_dir)
            if state.world_size != self.world:
                raise ckpt.CheckpointError(f"{resume_dir} was saved by {state.world_size} processes; resume with the "
                                           f"same number (now {self.world}) so every rank continues its own data exactly")
            return state
        state = ckpt.TrainerState(world_size=self.world)
        if self.config.training.objective == "vae":  # no diffusion: its sigma_data is not used
            state.sigma_data = 1.0
        elif self.config.training.objective == "guided":  # the student denoises on its teacher's scale
            state.sigma_data = teacher_sigma_data(self.config)
        elif self.config.score_model.pretrained:  # a trained network goes on denoising on its own scale
            state.sigma_data = sigma_data_of(PRETRAINED_KEY, self.config.score_model.pretrained)
        elif self.config.diffusion.sigma_data is not None:
            state.sigma_data = self.config.diffusion.sigma_data
        else:
            state.sigma_data = measure_training_sigma_data(self.accelerator, self.train_set, self.transform, self.config)
        return state

    def _build_model(self) -> None:
        """The seeded model, AdamW with its LR schedule, the EMA and this process's noise generator."""
        tc = self.tc
        torch.manual_seed(tc.seed)
        model = training_model(self.config, self.formulation)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        logger.info("parameters: lip encoder %.2f M, %s %.2f M, trainable %.2f M",
                    sum(p.numel() for p in model.lip_encoder.parameters()) / 1e6, type(model.network).__name__,
                    sum(p.numel() for p in model.network.parameters()) / 1e6,
                    sum(p.numel() for p in self.trainable) / 1e6)
        optimizer = torch.optim.AdamW(self.trainable, lr=tc.learning_rate, betas=(tc.adam_beta1, tc.adam_beta2),
                                      weight_decay=tc.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(tc.lr_schedule, tc.warmup_steps, self.max_steps))
        # The scheduler is saved as JSON (safe_state), not registered with Accelerate (a pickle).
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.unwrapped: Any = self.accelerator.unwrap_model(self.model)  # AVDiffusionModel or AVVAEModel
        with full_parameters(self.accelerator, self.model):
            self.ema = ExponentialMovingAverage(self.unwrapped, tc.ema_decay)
        self.generator = torch.Generator().manual_seed(tc.seed * 1009 + self.rank)

    def _cache_frontend_features(self) -> None:
        """Crops carry the frozen front-end's features, computed once per clip (`avdiff.data.frontend_cache`;
        the first process writes the cache, the others read it)."""
        encoder = self.unwrapped.lip_encoder
        root = Path(self.tc.frontend_cache_dir) if self.tc.frontend_cache_dir else self.output_dir / FRONTEND_CACHE_DIR
        for dataset in (self.train_set, self.valid_set):
            if dataset is None or not dataset.has_video:
                continue
            if self.accelerator.is_main_process:
                features = frontend_cache(encoder, dataset, root, self.device)
            self.accelerator.wait_for_everyone()
            if not self.accelerator.is_main_process:
                features = frontend_cache(encoder, dataset, root, self.device, build=False)
            dataset.use_frontend_features(features)

    def _restore(self, resume_dir: Path) -> None:
        """Load optimizer, scheduler, scaler, EMA and RNG from a checkpoint, so the run continues exactly."""
        safe_state.load_accelerate_state(self.accelerator, resume_dir)  # refuses pickled code, naming the file
        safe_state.restore_scheduler(resume_dir, self.scheduler)
        self.ema.load_state_dict(load_file(str(resume_dir / ckpt.EMA_NAME), device=str(self.device)))
        ckpt.restore_rng(resume_dir, self.rank, self.generator)
        logger.info("resumed from %s: step %d, epoch %d, item %d of %d in this epoch; optimizer, scheduler, "
                    "scaler, EMA, RNG and data position restored", resume_dir, self.state.step, self.state.epoch,
                    self.state.position, self.sampler.items_per_rank)

    def run(self) -> TrainResult:
        """Train epoch after epoch until the stop policy ends the run; then checkpoint, export, report."""
        self.progress = tqdm(total=self.max_steps, initial=self.state.step, desc="train",
                             disable=not self.accelerator.is_local_main_process, dynamic_ncols=True)
        self.window.reset()
        self.deadline = time.monotonic() + 60 * self.max_minutes if self.max_minutes else None
        with StopRequest() as stop:
            while self.state.step < self.max_steps and self.status == "finished":
                self.sampler.set_position(self.state.epoch, self.state.position)
                if not self._train_epoch(stop):  # the epoch ran out: the next one starts from its first item
                    self.state.epoch += 1
                    self.state.position = 0
        self.progress.close()
        return self._finish()

    def _train_epoch(self, stop: StopRequest) -> bool:
        """Train on the rest of this epoch's batches; True if the stop policy ended it early."""
        for batch in self.loader:
            if self.train_on(batch) and self._after_step(stop):
                return True
        return False

    def train_on(self, batch: dict[str, Any]) -> bool:
        """One micro-batch forward/backward, then `step` if it completes the accumulation; True if it did."""
        self.model.train()
        if self.record_data_order:
            self.seen_ids.extend(batch["id"])
        with self.accelerator.accumulate(self.model):
            self._forward_backward(batch)
            if not self.accelerator.sync_gradients:
                return False
            self.step()
        return True

    def _forward_backward(self, batch: dict[str, Any]) -> None:
        """The micro-batch's loss and gradients; a non-finite loss back-propagates zeros, spoiling the step."""
        device = self.device
        labels = {"phones": batch["phones"].to(device)} if "phones" in batch else {}
        out = self.model(batch["audio"].to(device), batch["video"].to(device), batch["video_valid"].to(device),
                         batch["face_ok"].to(device), batch["frame_mask"].to(device), self.generator, **labels)
        finite = bool(torch.isfinite(out.loss.detach()))
        self.accelerator.backward(out.loss if finite else torch.nan_to_num(out.loss, nan=0.0, posinf=0.0, neginf=0.0))
        self.window.add_micro_batch(out, finite, self.tc.batch_size * self.world)
        self.loss_was_nonfinite = self.loss_was_nonfinite or not finite
        self.state.position += self.tc.batch_size

    def step(self) -> None:
        """One optimizer step over the accumulated micro-batches; skipped if a loss or the gradient is not finite."""
        bad_loss = any_process(self.accelerator, self.loss_was_nonfinite)
        grad_norm = self.accelerator.clip_grad_norm_(self.trainable, self.tc.max_grad_norm)
        grad_norm = float(grad_norm) if grad_norm is not None else 0.0
        bad_grad = not math.isfinite(grad_norm) and self.accelerator.mixed_precision != "fp16"  # fp16: the scaler skips
        if bad_loss or bad_grad:
            self._skip_step("loss" if bad_loss else f"gradient norm {grad_norm}")
        else:
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            with full_parameters(self.accelerator, self.model):
                self.ema.update(self.unwrapped)
            self.state.nonfinite_streak = 0
            self.window.add_grad_norm(grad_norm)
        self.loss_was_nonfinite = False
        self.state.step += 1
        self.progress.update(1)

    def _skip_step(self, what: str) -> None:
        """Drop a non-finite step's gradients; too many in a row raise `TrainingDiverged` (stop policy)."""
        self.optimizer.zero_grad(set_to_none=True)
        state = self.state
        state.nonfinite_streak += 1
        logger.warning("step %d: non-finite %s; step skipped (%d in a row, limit %d)",
                       state.step + 1, what, state.nonfinite_streak, self.tc.max_nonfinite_steps)
        if self.accelerator.is_main_process:
            self.accelerator.log({"train/nonfinite_skipped": state.nonfinite_streak}, step=state.step)
        if state.nonfinite_streak >= self.tc.max_nonfinite_steps:
            latest = ckpt.find_latest_checkpoint(self.output_dir)
            raise TrainingDiverged(
                f"{state.nonfinite_streak} non-finite steps in a row at step {state.step}: "
                f"stopping. The last good checkpoint is {latest or 'none (no checkpoint saved yet)'}; "
                "lower training.learning_rate or check the data for NaNs, then --resume latest")

    def _after_step(self, stop: StopRequest) -> bool:
        """Log, validate and checkpoint when due, then apply the stop policy; True to stop."""
        step, tc = self.state.step, self.tc
        if step % tc.log_every == 0 or step == self.max_steps:
            self.log()
        if self.valid_set is not None and tc.validate_every and step % tc.validate_every == 0:
            self.validate()
        if step % tc.checkpoint_every == 0 and self.state.nonfinite_streak:
            logger.warning("step %d: no checkpoint while steps are non-finite", step)
        elif step % tc.checkpoint_every == 0:
            self.checkpoint()
        return self.should_stop(stop)

    def log(self) -> None:
        """Log the window's means (loss, per-sigma-band losses, lr, grad norm, samples/s); open a new window."""
        scalars = self.window.scalars(self.scheduler.get_last_lr()[0], self.device)
        self.accelerator.log(scalars, step=self.state.step)
        self.progress.set_postfix(loss=f"{scalars.get('train/loss', float('nan')):.4f}",
                                  lr=f"{scalars['train/lr']:.2e}")
        self.window.reset()

    def validate(self) -> None:
        """Validation losses and example clips from the EMA weights, to see progress beyond the training loss."""
        log_validation(self.accelerator, self.ema.module, self.valid_set, self.config, self.state.step, logger)

    def should_stop(self, stop: StopRequest) -> bool:
        """Stop policy after a step: a signal (checkpoint, `interrupted`), the time budget, or max_steps."""
        if any_process(self.accelerator, stop.requested):
            if self.saved_at != self.state.step:
                self.checkpoint()
            self.status = "interrupted"
            return True
        if self.deadline is not None and any_process(self.accelerator, time.monotonic() > self.deadline):
            logger.info("time budget of %.1f minutes reached at step %d", self.max_minutes, self.state.step)
            self.max_steps = self.state.step
        return self.state.step >= self.max_steps

    def checkpoint(self) -> Path:
        """Save checkpoint-N (a temporary folder, renamed when complete) and prune old ones, for --resume."""
        self.saved_at = step = self.state.step
        accelerator = self.accelerator
        tmp = ckpt.temporary_dir(self.output_dir, step)
        if accelerator.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        ckpt.save_rng(tmp, self.rank, self.generator)
        accelerator.wait_for_everyone()
        final = ckpt.checkpoint_dir(self.output_dir, step)
        if accelerator.is_main_process:
            save_file(self.ema.state_dict(), str(tmp / ckpt.EMA_NAME))
            safe_state.save_scheduler(tmp, self.scheduler)
            ckpt.write_state(tmp, self.state)
            final = ckpt.finalize(self.output_dir, step, self.tc.keep_checkpoints)
            logger.info("saved %s", final)
        accelerator.wait_for_everyone()
        return final

    def export(self) -> Path:
        """Write the EMA weights as a model folder (DIR/model) with the run's config: what inference loads."""
        path = export_model(self.ema.module, self.formulation, self.config, bool(self.state.audio_visual),
                            self.output_dir / "model")
        logger.info("exported the EMA model to %s", path)
        return path

    def _finish(self) -> TrainResult:
        """Final checkpoint and export (unless interrupted), the per-rank report, and the result."""
        model_dir = None
        if self.status == "finished":
            if self.saved_at != self.state.step:
                self.checkpoint()
            if self.accelerator.is_main_process:
                model_dir = self.export()
        write_rank_report(self.output_dir, self.accelerator, self.unwrapped, self.state,
                          self.seen_ids if self.record_data_order else None)
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        logger.info("%s at step %d", self.status, self.state.step)
        return TrainResult(status=self.status, step=self.state.step, output_dir=self.output_dir,
                           model_dir=model_dir or (self.output_dir / "model"))


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
    `max_steps` (checkpoint and export), for demos with a time budget. One training at a time
    per output folder (`avdiff.training.run_lock`); under a launcher, the launcher's end stops it with a
    checkpoint (`avdiff.training.launcher`).
    """
    with RunLock(output_dir):  # a second training on this folder stops here with a clear message
        follow_launcher()  # under accelerate launch / torchrun: their end is a SIGTERM here
        return Trainer(config, output_dir, max_steps=max_steps, resume=resume, cpu=cpu,
                       record_data_order=record_data_order, max_minutes=max_minutes).run()


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
