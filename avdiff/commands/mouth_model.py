"""`avdiff mouth-model`: fit the Gaussian of a lip encoder's training mouth crops into a model folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from avdiff.commands import summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mouth-model", help=summary("mouth-model"),
        description="Fit a Gaussian to the mouth crops the model's lip encoder was trained on and save it in the "
        "folder's lip_encoder/ (avdiff.mouth.mouth_model). Enhancement then scores as unreliable the frames that "
        "show no mouth (a hand or a patch over it), on any share of a clip. `avdiff train` and `avdiff export` "
        "write it themselves; this adds it to a folder made before them.")
    parser.add_argument("--model", required=True, help="model folder (or shipped model name) to add the mouth model to")
    parser.add_argument("--manifest", type=Path, nargs="+", required=True,
                        help="the lip encoder's training manifest(s) (items with video)")
    parser.add_argument("--max-clips", type=int, default=None,
                        help="clips spread evenly over the manifests (default: avdiff.mouth.mouth_model's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avdiff.errors import InputError
    from avdiff.mouth.mouth_model import MAX_FIT_CLIPS, fit_from_manifests, write_beside
    from avdiff.pipeline.model_folder import index_crop_size, read_index_json
    from avdiff.pipeline.shipped import resolve_model

    folder = resolve_model(args.model)
    crop_size = index_crop_size(read_index_json(folder))  # from the index: no network is loaded
    if not (folder / "lip_encoder" / "config.json").is_file():
        raise InputError(f"{folder}: no lip_encoder/ (a model folder with a lip encoder is needed)")
    model = fit_from_manifests(args.manifest, crop_size, args.max_clips or MAX_FIT_CLIPS)
    path = write_beside(model, folder / "lip_encoder")
    print(f"mouth model of {', '.join(map(str, args.manifest))} -> {path}")
    return 0
