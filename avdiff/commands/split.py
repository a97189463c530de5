"""`avdiff split`: speaker-disjoint train / valid / test manifests from a prepared one."""

from __future__ import annotations

import argparse
from pathlib import Path

from avdiff.commands import summary
from avdiff.data.manifest import read_manifest
from avdiff.data.splits import split_manifest


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "split", help=summary("split"),
        description="Hold out whole speakers (drawn with --seed from the sorted speaker list) and write "
        "train.jsonl, valid.jsonl and test.jsonl beside MANIFEST.")
    parser.add_argument("--manifest", type=Path, required=True, help="prepared manifest.jsonl")
    parser.add_argument("--test-speakers", type=int, required=True, help="speakers held out for testing")
    parser.add_argument("--valid-speakers", type=int, default=0, help="speakers held out for validation (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the speaker draw (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    written = split_manifest(args.manifest, args.test_speakers, args.valid_speakers, args.seed)
    for split, path in written.items():
        items = read_manifest(path)
        speakers = len({item["speaker"] for item in items})
        hours = sum(item["duration"] for item in items) / 3600
        print(f"{split}: {len(items)} items, {speakers} speakers, {hours:.2f} h -> {path}")
    return 0
