"""`avdiff config`: validate a YAML config (with --set overrides) and print or save it resolved."""

from __future__ import annotations

import argparse
from pathlib import Path

from avdiff.commands import summary
from avdiff.config import AVDiffConfig, dump_yaml, load_config, packaged_configs, read_config_chain, save_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help=summary("config"),
        description="Load CONFIG (or the defaults) with its chain of `base:` configs, apply --set overrides, "
        "check every key and type, and print the resolved config. Unknown keys and wrong types are errors "
        f"naming the key and its file. Packaged recipes: {', '.join(packaged_configs())}.",
    )
    parser.add_argument("config", nargs="?", help="a packaged recipe's name (e.g. tiny) or a YAML file "
                        "(default: the built-in defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set sampler.steps=30 (repeatable)")
    parser.add_argument("--output", type=Path, help="also write the resolved config to this file")
    parser.add_argument("--summary", action="store_true",
                        help="also build the score network and print its parameter count")
    parser.set_defaults(func=run)


def describe_source(config: str | None) -> str:
    """`resolved from A` plus one line per base: the chain of files the config came from."""
    if config is None:
        return "resolved from the built-in defaults"
    files = [path for path, _ in read_config_chain(AVDiffConfig, config)]
    lines = [f"resolved from {files[0]}"]
    lines += [f"  base: {path}" for path in files[1:]]
    lines.append("  base: the built-in defaults (avdiff/config/schema.py)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = load_config(AVDiffConfig, args.config, args.overrides)
    from avdiff.models.backbones import build_backbone  # the models (torch, diffusers) load only here
    from avdiff.training.model import check_registered

    check_registered(config)
    source = describe_source(args.config)
    overrides = f"\nwith --set {' '.join(args.overrides)}" if args.overrides else ""
    print(dump_yaml(config, header=source + overrides), end="")
    if args.output:
        save_config(config, args.output, header=source + overrides)
    if args.summary:
        model = build_backbone(config.score_model)
        params = sum(p.numel() for p in model.parameters())
        multiple = getattr(model, "size_multiple", None)
        padded = f", input padded to a multiple of {multiple}" if multiple else ""
        print(f"# score network ({config.score_model.backbone}): {params / 1e6:.2f} M parameters{padded}")
    return 0
