#!/usr/bin/env python
"""Train avdiff's lip encoder and score network jointly with Hugging Face Accelerate.

    accelerate launch training/train.py --config configs/synth-gpu.yaml --output-dir runs/synth
    python training/train.py --config configs/tiny.yaml --set data.train_manifest=DATA/train.jsonl
    torchrun --standalone --nproc_per_node 2 training/train.py --config ... --cpu   # 2 CPU processes

The run folder gets checkpoint-N/ folders, TensorBoard logs (logs/), train.log, config.yaml
and, at the end, the EMA model in DIR/model/ (safetensors only).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from avdiff.config import AVDiffConfig, load_config
from avdiff.errors import AVDiffError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
    parser.add_argument("--output-dir", type=Path, default=None, help="run folder (default: outputs/<config name>)")
    parser.add_argument("--max-steps", type=int, default=None, help="override training.max_steps")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set training.batch_size=8 (repeatable)")
    parser.add_argument("--resume", default=None, metavar="latest|PATH",
                        help="continue from the newest complete checkpoint (latest) or a checkpoint folder")
    parser.add_argument("--cpu", action="store_true",
                        help="train on the CPU even if a GPU is present (also ACCELERATE_USE_CPU=true)")
    parser.add_argument("--record-data-order", action="store_true",
                        help="write the ids each process trained on to DIR/ranks/rank<r>.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(AVDiffConfig, args.config, args.overrides)
        from avdiff.training.trainer import train

        output_dir = args.output_dir or Path("outputs") / args.config.stem
        cpu = args.cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        result = train(config, output_dir, max_steps=args.max_steps, resume=args.resume, cpu=cpu,
                       record_data_order=args.record_data_order)
    except AVDiffError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    return 0 if result.status == "finished" else 3


if __name__ == "__main__":
    raise SystemExit(main())
