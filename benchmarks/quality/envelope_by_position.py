"""Where in a sentence do the lips predict the envelope well? The envelope error by time in the clip.

The trainer's validation and `envelope_probe.py` score crops that start at the clip's beginning,
and in GRID sentences the first second holds the command and colour words of a tiny closed set
("bin blue ..."), while the letter and digit come later. This scores the lips as inference uses
them: whole held-out clips through the pipeline's own lip path (`AVDiffusionPipeline.encode_lips`)
against the clean speech's log-mel envelope per video frame (`lips_matter.true_envelope`), the
squared error averaged over bands, per second of the clip; and the same with each clip's mean
offset removed (`--offset-free`: the shape of the envelope, not its level, which depends on how a
crop or clip is peak-normalised). `--encoder` folders are scored in
place of the model's own lip encoder (e.g. `runs/v2s-lips/model/lip_encoder`).

    .venv/bin/python -m benchmarks.quality.envelope_by_position --model v2s \\
        --test data/synth-v2s-test/manifest.jsonl --train data/synth-v2s/train.jsonl --clips 36 \\
        --encoder runs/v2s-lips/model/lip_encoder --output benchmarks/results/envelope-by-position
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from avdiff.timegrid import VIDEO_FPS
from benchmarks.common.record import record
from benchmarks.common.rows import mean_ci, mean_ci_values
from benchmarks.quality.lips_matter import clip_inputs, held_out_setup, true_envelope


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s", help="model folder or shipped model name (its lips are scored)")
    parser.add_argument("--encoder", type=Path, nargs="*", default=[], help="lip encoder folders scored in its place")
    parser.add_argument("--test", type=Path, required=True, help="manifest of the held-out synthetic corpus")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifest(s): sentences to exclude")
    parser.add_argument("--clips", type=int, default=36)
    parser.add_argument("--window", type=int, default=None, help="video frames the lips see at once "
                        "(default: encode_lips's); the training crops are 25 frames long")
    parser.add_argument("--context", type=int, default=None, help="frames of context on each side of a window")
    parser.add_argument("--offset-free", action="store_true", help="remove each clip's mean error (its level offset)")
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


@torch.no_grad()
def errors_by_second(pipeline, items: list[dict], test: Path, offset_free: bool,
                     windows: dict[str, int]) -> dict[int, list[float]]:
    """second of the clip -> each clip's mean envelope error over that second's video frames."""
    bands = pipeline.lip_encoder.config.envelope_bands
    by_second: dict[int, list[float]] = {}
    for item in items:
        clean, video = clip_inputs(test, item)
        predicted = pipeline.encode_lips(video, **windows)[:, :bands]
        target = true_envelope(pipeline, clean, video.num_frames).to(predicted)
        frames = min(len(predicted), len(target))
        difference = predicted[:frames] - target[:frames]
        if offset_free:
            difference = difference - difference.mean()
        error = difference.square().mean(-1)[torch.from_numpy(video.face_ok[:frames])]
        seconds = (torch.arange(frames) // VIDEO_FPS)[torch.from_numpy(video.face_ok[:frames])]
        for second in seconds.unique().tolist():
            by_second.setdefault(int(second), []).append(float(error[seconds == second].mean()))
    return by_second


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from avdiff.models.lip_encoder import LipEncoder

    items, pipeline = held_out_setup(args)
    encoders = {f"{args.model} (its own lips)": pipeline.lip_encoder}
    encoders.update({str(folder): LipEncoder.from_pretrained(folder).eval() for folder in args.encoder})
    windows = {key: value for key, value in (("window", args.window), ("context", args.context)) if value is not None}
    numbers, lines = {}, []
    for name, encoder in encoders.items():
        pipeline.lip_encoder = encoder
        by_second = errors_by_second(pipeline, items, args.test, args.offset_free, windows)
        numbers[name] = {str(s): mean_ci_values(v) for s, v in sorted(by_second.items())}
        numbers[name]["all"] = mean_ci_values([e for v in by_second.values() for e in v])
        lines.append(f"| {name} | " + " | ".join(mean_ci(v) for _, v in sorted(by_second.items())) + " |")
    seconds = sorted({int(s) for entry in numbers.values() for s in entry if s != "all"})
    header = "| lips | " + " | ".join(f"{s}-{s + 1} s" for s in seconds) + " |"
    kind = "offset-free envelope error" if args.offset_free else "Envelope error"
    text = "\n".join([f"{kind} per second of {len(items)} held-out clips (mean ± 95 % CI over clips):", "",
                      header, "|" + " --- |" * (len(seconds) + 1), *lines]) + "\n"
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
