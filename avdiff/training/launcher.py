"""Stop with the launcher: a trainer started by `accelerate launch` or torchrun saves and exits
when that launcher goes away.

`accelerate launch` (one process) runs the trainer as a child and dies at once on SIGTERM,
leaving the child training on, unseen, into the same output folder. On Linux the kernel can
send a child a signal when its parent exits (`prctl(PR_SET_PDEATHSIG)`); the trainer asks for
SIGTERM, which its stop handler turns into "finish this step, checkpoint, exit 3". Only under a
launcher: a trainer started from a shell keeps running when the shell exits (nohup, tmux).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Words in a parent's command line that mark it as a launcher of training processes.
LAUNCHER_MARKERS = (("accelerate", "launch"), ("torch.distributed.run",), ("torchrun",))


def parent_command(pid: int) -> list[str]:
    """The command line of process `pid` (empty where /proc cannot tell)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def launcher_name(command: list[str]) -> str | None:
    """Which launcher `command` is (`accelerate launch`, `torch.distributed.run`, `torchrun`), or None."""
    words = [os.path.basename(part) for part in command]
    for marker in LAUNCHER_MARKERS:
        if all(any(word == m or word.startswith(f"{m}-") for word in words) for m in marker):
            return " ".join(marker)
    return None


def follow_launcher() -> str | None:
    """Under a launcher, ask for SIGTERM when it exits; the launcher's name, or None (no launcher,
    or not Linux). A launcher already gone by now is answered with SIGTERM at once."""
    parent = os.getppid()
    name = launcher_name(parent_command(parent))
    if name is None or not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("could not ask to follow the launcher (prctl errno %d)", ctypes.get_errno())
        return None
    if os.getppid() != parent:  # it died between getppid() and prctl()
        os.kill(os.getpid(), signal.SIGTERM)
    logger.info("started by %s (pid %d): a signal that ends it also stops this trainer, with a checkpoint",
                name, parent)
    return name
