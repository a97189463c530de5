#!/usr/bin/env python
"""Train avdiff's lip encoder and score network jointly with Hugging Face Accelerate.

The same command as `avdiff train` (avdiff/commands/train.py), kept as a script:

    accelerate launch training/train.py --config configs/synth-gpu.yaml --output runs/synth
    python training/train.py --config configs/tiny.yaml --set data.train_manifest=DATA/train.jsonl
    torchrun --standalone --nproc_per_node 2 training/train.py --config ... --cpu   # 2 CPU processes

The run folder gets checkpoint-N/ folders, TensorBoard logs (logs/), train.log, config.yaml
and, at the end, the EMA model in DIR/model/ (safetensors only).
"""

from __future__ import annotations

import argparse
import sys

from avdiff.commands.train import add_arguments, run
from avdiff.errors import AVDiffError


def main(argv: list[str] | None = None) -> int:
    """Parse the flags of `avdiff train` and run it; avdiff errors become one line and exit code 2."""
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except AVDiffError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
