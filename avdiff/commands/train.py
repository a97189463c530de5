"""`avdiff train`: train the lip encoder and the score network jointly with Hugging Face Accelerate.

    avdiff train --config configs/tiny.yaml --set data.train_manifest=DATA/train.jsonl
    accelerate launch -m avdiff train --config configs/synth-gpu.yaml --output runs/synth
    torchrun --standalone --nproc_per_node 2 -m avdiff train --config ... --cpu   # 2 CPU processes

`training/train.py` is the same command as a script. The run folder gets checkpoint-N/ folders,
TensorBoard logs (logs/), train.log, config.yaml and, at the end, the EMA model in DIR/model/.
Exit codes: 0 finished, 2 an error (bad config, data, checkpoint, diverged), 3 interrupted by a
signal (a checkpoint was saved; continue with --resume latest). A job that a cluster scheduler may
requeue runs the same command every time with `--resume auto`: it resumes when a checkpoint exists.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from avdiff.commands import summary
from avdiff.commands.common import positive_float, positive_int
from avdiff.config import AVDiffConfig, load_config

EXIT_INTERRUPTED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, shared by `avdiff train` and `training/train.py`."""
    parser.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
    parser.add_argument("--output", "--output-dir", dest="output", type=Path, default=None,
                        help="run folder (default: outputs/<config name>)")
    parser.add_argument("--max-steps", type=positive_int, default=None, help="override training.max_steps")
    parser.add_argument("--max-minutes", type=positive_float, default=None,
                        help="wall-clock budget: stop, checkpoint and export after this many minutes of training")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set training.batch_size=8 (repeatable)")
    parser.add_argument("--resume", default=None, metavar="latest|auto|PATH",
                        help="continue from the newest complete checkpoint (latest: an error when there is none), "
                        "a checkpoint folder, or auto: the newest complete checkpoint if any, else a fresh start "
                        "(for jobs a scheduler may requeue)")
    parser.add_argument("--cpu", action="store_true",
                        help="train on the CPU even if a GPU is present (also ACCELERATE_USE_CPU=true)")
    parser.add_argument("--record-data-order", action="store_true",
                        help="write the ids each process trained on to DIR/ranks/rank<r>.json")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `avdiff train` to the command line."""
    parser = subparsers.add_parser(
        "train", help=summary("train"),
        description="Train on the manifests the config names (data.train_manifest, data.valid_manifest) and "
        "export the EMA weights to OUTPUT/model. Run it under `accelerate launch -m avdiff train ...` or "
        "`torchrun ... -m avdiff train ...` for several processes. Exit code 3: interrupted, checkpoint saved.")
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, train, and return 0 (finished) or 3 (interrupted, checkpoint saved)."""
    from avdiff.training.trainer import train  # accelerate and the models load only when training

    config = load_config(AVDiffConfig, args.config, args.overrides)
    output = args.output or Path("outputs") / args.config.stem
    cpu = args.cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    result = train(config, output, max_steps=args.max_steps, resume=args.resume, cpu=cpu,
                   record_data_order=args.record_data_order, max_minutes=args.max_minutes)
    return 0 if result.status == "finished" else EXIT_INTERRUPTED
