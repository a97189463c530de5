"""Crash-safe training checkpoints: written to a temporary folder, renamed when complete.

`checkpoint-N/` holds Accelerate's state (model, optimizer, scaler), the LR scheduler's state
(`scheduler.json`; nothing is resumed through pickle: `avdiff.training.safe_state`), the EMA
weights (`ema.safetensors`), one RNG file per process (`rng_rank{r}.safetensors`: the global
torch/CUDA generators and the trainer's own) and, written last, `trainer_state.json` with the
step, the data position, sigma_data, whether the data had video and the size of every file.
Only a folder whose `trainer_state.json` exists and whose files all have their recorded sizes
counts as complete; `--resume latest` takes the newest complete one and says which folders it
passed over (`--resume auto` too, or starts afresh when there is none).
Old checkpoints are removed only after the new one is complete (keep-last-K).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from avdiff.errors import AVDiffError

logger = logging.getLogger(__name__)

STATE_NAME = "trainer_state.json"
EMA_NAME = "ema.safetensors"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
AUTO = "auto"  # --resume auto: the newest complete checkpoint if there is one, else a fresh start


class CheckpointError(AVDiffError):
    """A checkpoint cannot be resumed from as asked."""


@dataclass
class TrainerState:
    """Where training is: restored exactly on resume."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # items of this epoch each rank has consumed
    sigma_data: float = 0.0
    world_size: int = 1
    nonfinite_streak: int = 0
    # Whether the training data had mouth video: the exported model is audio-visual or an audio-only
    # prior. Recorded so `avdiff export` needs no data; None in checkpoints saved before it was.
    audio_visual: bool | None = None


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f"checkpoint-{step}"


def temporary_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f".checkpoint-{step}.tmp"


def rng_file(folder: Path, rank: int) -> Path:
    return folder / f"rng_rank{rank}.safetensors"


def save_rng(folder: Path, rank: int, generator: torch.Generator) -> None:
    """This process's random state: torch's global CPU (and CUDA) generator and the trainer's."""
    state = {"torch_cpu": torch.get_rng_state(), "trainer": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state()
    save_file({k: v.contiguous() for k, v in state.items()}, str(rng_file(folder, rank)))


def restore_rng(folder: Path, rank: int, generator: torch.Generator) -> None:
    """Restore what `save_rng` wrote, failing loudly if this rank's file is missing."""
    path = rng_file(folder, rank)
    if not path.is_file():
        raise CheckpointError(f"{folder}: no RNG state for process {rank} ({path.name}); "
                              "was it saved with a different number of processes?")
    state = load_file(str(path))
    torch.set_rng_state(state["torch_cpu"])
    generator.set_state(state["trainer"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["torch_cuda"])


def write_state(folder: Path, state: TrainerState) -> None:
    """Write trainer_state.json last, recording every file's size (the completeness check)."""
    files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / STATE_NAME).write_text(json.dumps({**asdict(state), "files": files}, indent=2) + "\n")


def read_state(folder: Path) -> TrainerState:
    data = json.loads((folder / STATE_NAME).read_text())
    data.pop("files", None)
    return TrainerState(**data)


def incomplete_reason(folder: Path) -> str | None:
    """Why `folder` is not a complete checkpoint, or None if it is."""
    state_path = folder / STATE_NAME
    if not state_path.is_file():
        return f"no {STATE_NAME} (interrupted while saving)"
    try:
        files = json.loads(state_path.read_text())["files"]
    except (json.JSONDecodeError, KeyError) as error:
        return f"unreadable {STATE_NAME} ({error})"
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} expected (truncated)"
    return None


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """All `checkpoint-N` folders, newest first (complete or not)."""
    found = []
    for path in output_dir.glob("checkpoint-*"):
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def find_latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint; incomplete ones are logged and passed over."""
    for _, path in list_checkpoints(output_dir):
        reason = incomplete_reason(path)
        if reason is None:
            return path
        logger.warning("skipping %s: %s", path, reason)
    return None


def resolve_resume(output_dir: Path, resume: str) -> Path:
    """`latest` or a checkpoint path -> a complete checkpoint folder, or a clear error."""
    if resume == "latest":
        found = find_latest_checkpoint(output_dir)
        if found is None:
            raise CheckpointError(f"--resume latest: no complete checkpoint-N folder in {output_dir} (a job that "
                                  f"may start before the first checkpoint, e.g. when requeued: --resume {AUTO})")
        return found
    path = Path(resume)
    if not path.is_dir():
        raise CheckpointError(f"--resume {resume}: no such checkpoint folder")
    reason = incomplete_reason(path)
    if reason:
        raise CheckpointError(f"--resume {resume}: incomplete checkpoint: {reason}")
    return path


def resolve_auto(output_dir: Path) -> tuple[Path | None, str]:
    """`--resume auto`: the newest complete checkpoint, or None for a fresh start (a requeued job
    runs the same command every time), with the one line that says which."""
    found = find_latest_checkpoint(output_dir)
    if found is None:
        return None, f"--resume {AUTO}: no complete checkpoint in {output_dir} yet; starting fresh"
    return found, f"--resume {AUTO}: resuming from {found}"


def finalize(output_dir: Path, step: int, keep: int) -> Path:
    """Rename the completed temporary folder to checkpoint-N, then rotate old complete ones."""
    tmp, final = temporary_dir(output_dir, step), checkpoint_dir(output_dir, step)
    reason = incomplete_reason(tmp)
    if reason:
        raise CheckpointError(f"{tmp}: refusing to publish an incomplete checkpoint: {reason}")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    complete = [path for _, path in list_checkpoints(output_dir) if incomplete_reason(path) is None]
    for old in complete[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return final
