"""The `avdiff` command line: a thin dispatcher over `avdiff.commands.*`."""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
from collections.abc import Sequence

from avdiff import __version__
from avdiff.commands import COMMANDS, COMMANDS_WITH_VIDEO, QUICK_EXIT_COMMANDS
from avdiff.errors import AVDiffError
from avdiff.plugins import load_plugins


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every sub-command, or (`command` given) with that one's full
    parser and a one-line entry for each other, so a run imports only its own command's module
    (`avdiff --help` none: no torch). The plug-ins load first, so the choices it lists (samplers,
    methods, layouts, ...) include theirs."""
    load_plugins()
    parser = argparse.ArgumentParser(
        prog="avdiff",
        description="Diffusion-based audio-visual speech generation and enhancement.",
    )
    parser.add_argument("--version", action="version", version=f"avdiff {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module_name).register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def chosen_command(argv: Sequence[str]) -> str:
    """The sub-command `argv` runs: its first word that is not an option (the top-level options
    take no values); "" when there is none (`avdiff --help`, `avdiff --version`)."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the chosen command, and turn avdiff errors into one clear line."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = chosen_command(argv)
    prefetch = None
    if command in COMMANDS_WITH_VIDEO:  # first, before torch loads: a one-video job's front-end runs beside its start
        from avdiff.commands.common import start_mouth_prefetch

        prefetch = start_mouth_prefetch(command, argv[argv.index(command) + 1 :])
    try:
        args = build_parser(command).parse_args(argv)
        args.mouth_prefetch = prefetch
        return int(args.func(args) or 0)
    except AVDiffError as error:
        print(f"avdiff {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        if prefetch is not None:
            prefetch.close()


def entry_point() -> None:
    """The `avdiff` console script and `python -m avdiff`: `main`, and after a one-shot job
    (QUICK_EXIT_COMMANDS) the process ends as soon as its exit handlers have run and its output is
    flushed. The interpreter's own tear-down (freeing torch's, ONNX Runtime's and every module's
    objects one by one) took 0.5-0.6 s of a 5 s `avdiff generate` on 2 cores and writes nothing."""
    argv = sys.argv[1:]
    code = main(argv)
    if chosen_command(argv) in QUICK_EXIT_COMMANDS:
        end_process(code)
    raise SystemExit(code)


def end_process(code: int) -> None:
    """Run the exit handlers (temporary folders, logging, child processes), flush the standard
    streams, and end the process with `code` without tearing the interpreter down."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


if __name__ == "__main__":
    entry_point()
