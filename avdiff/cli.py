"""The `avdiff` command line: a thin dispatcher over `avdiff.commands.*`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from avdiff import __version__
from avdiff.errors import AVDiffError
from avdiff.plugins import load_plugins

# Sub-command modules, in the order `avdiff --help` lists them. Each has `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = (
    "avdiff.commands.config",
    "avdiff.commands.prepare",
    "avdiff.commands.synth",
    "avdiff.commands.split",
    "avdiff.commands.train",
    "avdiff.commands.export",
    "avdiff.commands.generate",
    "avdiff.commands.enhance",
    "avdiff.commands.extract",
    "avdiff.commands.evaluate",
    "avdiff.commands.demo",
    "avdiff.commands.serve",
    "avdiff.commands.env",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command; the plug-ins load first, so the
    choices it lists (samplers, methods, layouts, ...) include theirs."""
    load_plugins()
    parser = argparse.ArgumentParser(
        prog="avdiff",
        description="Diffusion-based audio-visual speech generation and enhancement.",
    )
    parser.add_argument("--version", action="version", version=f"avdiff {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the chosen command, and turn avdiff errors into one clear line."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AVDiffError as error:
        print(f"avdiff {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
