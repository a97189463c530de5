"""`avdiff env`: the environment in a few lines, to paste into a bug report (as `accelerate env`)."""

from __future__ import annotations

import argparse
import json

from avdiff.commands import summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "env",
        help=summary("env"),
        description="Print what a bug report needs: the versions of Python, avdiff and its main libraries, the "
        "platform and CPU (with native bfloat16 or not), CUDA and the GPUs, torch's threads, every registered "
        "sampler, backbone, formulation, posterior method, landmark backend and layout, the avdiff.plugins "
        "entry points and how loading each went, the shipped models, and where the caches are.",
    )
    parser.add_argument("--json", action="store_true", help="print it as JSON instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avdiff.environment import describe_environment, format_environment

    info = describe_environment()
    print(json.dumps(info, indent=2) if args.json else format_environment(info), end="\n" if args.json else "")
    return 0
