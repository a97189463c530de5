"""`avdiff export`: a model folder from a checkpoint of a (possibly still running) training run."""

from __future__ import annotations

import argparse
from pathlib import Path

from avdiff.commands import summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help=summary("export"),
        description="Rebuild the model of RUN (its config.yaml), load the EMA weights of a checkpoint and write "
        "the same model folder `avdiff train` writes when it finishes: to ship or evaluate a long run's progress.")
    parser.add_argument("--run", type=Path, required=True, help="training run folder (avdiff train --output)")
    parser.add_argument("--checkpoint", default="latest", help="latest (default) or a checkpoint folder")
    parser.add_argument("--output", type=Path, required=True, help="model folder to write (replaced atomically)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avdiff.training.export import export_checkpoint  # the models load only when exporting

    path = export_checkpoint(args.run, args.checkpoint, args.output)
    print(f"exported {args.run} ({args.checkpoint}) -> {path}")
    return 0
