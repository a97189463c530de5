"""`avdiff config`: validate a YAML config (with --set overrides) and print or save it resolved."""

from __future__ import annotations

import argparse
from pathlib import Path

from avdiff.config import AVDiffConfig, dump_yaml, load_config, save_config
from avdiff.models.score_unet import ScoreUNet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="validate a config and print it resolved (every key, with its comment)",
        description="Load CONFIG (or the defaults), apply --set overrides, check every key and type, "
        "and print the resolved config. Unknown keys and wrong types are errors naming the key.",
    )
    parser.add_argument("config", nargs="?", type=Path, help="YAML config file (default: built-in defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set sampler.steps=30 (repeatable)")
    parser.add_argument("--output", type=Path, help="also write the resolved config to this file")
    parser.add_argument("--summary", action="store_true",
                        help="also build the score network and print its parameter count")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(AVDiffConfig, args.config, args.overrides)
    source = str(args.config) if args.config else "built-in defaults"
    print(dump_yaml(config, header=f"resolved from {source}" + (f" with --set {' '.join(args.overrides)}" if args.overrides else "")), end="")
    if args.output:
        save_config(config, args.output, header=f"resolved from {source}")
    if args.summary:
        model = ScoreUNet.from_avdiff_config(config.score_model)
        params = sum(p.numel() for p in model.parameters())
        print(f"# score network: {params / 1e6:.2f} M parameters, input padded to a multiple of {model.size_multiple}")
    return 0
