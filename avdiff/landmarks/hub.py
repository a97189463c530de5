"""Where face-alignment's weights are looked for: torch hub's checkpoints folder, found without torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_weights_dir() -> Path:
    """face-alignment's cache: torch hub's checkpoints folder, found as `torch.hub.get_dir()` finds it
    ($TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub) without importing
    torch (2.5 s), which asking it would cost `--landmarks auto` before the job's front-end can start;
    once torch is loaded, torch's own answer (a `torch.hub.set_dir` included)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"
