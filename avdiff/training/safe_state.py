"""Training state that resumes without running pickled code.

A checkpoint folder is data someone may hand you, and Python's pickle runs whatever code a file
names. So nothing avdiff resumes from is unpickled freely:

- the LR scheduler's state is JSON (`scheduler.json`), not Accelerate's
  `custom_checkpoint_0.pkl`, which Accelerate loads with `weights_only=False`;
- the files Accelerate still writes with `torch.save` (optimizer, scaler, its RNG states) are
  each opened first with `torch.load(weights_only=True)` — tensors and plain data only — and
  a file that holds anything else stops the resume with a `CheckpointError` naming it, before
  any of it is used; Accelerate then loads them with `weights_only=True` as well;
- weights, the EMA and avdiff's own RNG state are safetensors, the step and data position JSON.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils.other import load as accelerate_safe_load

from avdiff.training.checkpoints import CheckpointError

logger = logging.getLogger(__name__)

SCHEDULER_NAME = "scheduler.json"
LEGACY_SCHEDULER_NAME = "custom_checkpoint_0.pkl"  # what older avdiff checkpoints hold instead
PICKLE_SUFFIXES = (".bin", ".pkl", ".pt", ".pth")  # files torch.save writes; safetensors and JSON are safe


def save_scheduler(folder: Path, scheduler: Any) -> None:
    """The scheduler's state as JSON; refuses state JSON cannot hold exactly (e.g. lambdas objects)."""
    state = scheduler.state_dict()
    try:
        text = json.dumps(state, indent=1, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"the LR scheduler's state cannot be saved as JSON ({error})") from error
    (folder / SCHEDULER_NAME).write_text(text + "\n")


def restore_scheduler(folder: Path, scheduler: Any) -> None:
    """Load `scheduler.json`; older checkpoints' pickled state only through `weights_only=True`."""
    path = folder / SCHEDULER_NAME
    if path.is_file():
        try:
            state = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{path}: not valid JSON ({error}); resume from another checkpoint") from error
    elif (folder / LEGACY_SCHEDULER_NAME).is_file():
        state = load_plain_data(folder / LEGACY_SCHEDULER_NAME)
    else:
        raise CheckpointError(f"{folder}: no {SCHEDULER_NAME}; not a complete avdiff checkpoint")
    if not isinstance(state, dict) or not _all_finite(state.get("base_lrs", [])):
        raise CheckpointError(f"{folder}: the LR scheduler state is not a mapping with finite base_lrs")
    scheduler.load_state_dict(state)


def _all_finite(values: Any) -> bool:
    """True for a list of finite numbers."""
    return isinstance(values, list) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def load_plain_data(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` (tensors, numbers, strings, containers, numpy arrays),
    memory-mapped so checking a large optimizer file costs little; anything else -> CheckpointError."""
    try:
        return accelerate_safe_load(str(path), map_location="cpu", mmap=True)
    except Exception as error:  # UnpicklingError (a class or function named), RuntimeError (not a torch file), ...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path}: refusing to resume: this file holds something other than tensors and plain data, "
            f"or is corrupt ({type(error).__name__}: {reason[:200]}). avdiff never unpickles code from a "
            f"checkpoint; resume from another one (--resume PATH) or delete {path.parent}") from error


def check_pickle_files(folder: Path) -> list[Path]:
    """Open every torch.save file of a checkpoint with `weights_only=True`; the ones checked."""
    checked = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in PICKLE_SUFFIXES:
            load_plain_data(path)
            checked.append(path)
    return checked


def load_accelerate_state(accelerator: Accelerator, folder: Path) -> None:
    """Accelerate's model/optimizer/scaler/RNG state, after `check_pickle_files` passed them all."""
    checked = check_pickle_files(folder)
    logger.debug("checked %d torch.save files of %s with weights_only=True", len(checked), folder)
    try:
        with _accelerate_view(folder) as view:
            accelerator.load_state(str(view), load_kwargs={"weights_only": True})
    except (RuntimeError, ValueError, KeyError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{folder}: cannot restore the training state ({reason[:300]}); was it saved "
                              "by a different model or config? Resume from another checkpoint") from error


@contextmanager
def _accelerate_view(folder: Path) -> Iterator[Path]:
    """`folder` as Accelerate should see it: an older checkpoint's scheduler pickle (restored by
    `restore_scheduler`) hidden, since Accelerate refuses custom states nobody registered."""
    if not (folder / LEGACY_SCHEDULER_NAME).is_file():
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="avdiff-resume-") as view:
        for path in folder.iterdir():
            if path.name != LEGACY_SCHEDULER_NAME:
                (Path(view) / path.name).symlink_to(path.resolve())
        yield Path(view)
