"""Probe: which frames does the front end score usable when a patch covers the mouth, with and
without the model's mouth model (issue 25, visual reliability)?

For held-out clips (`lips_matter`'s items), each corrupted as `unreliable_lips` does (occluded: a
dark patch over the middle of the mouth crop; replaced: another held-out speaker's mouth) on 25,
50, 75 and 100 % of the frames in spans, this records the share of corrupted frames still scored
usable (missed) and of intact frames scored unusable (false alarms), by the clip-relative crop
test alone and with `avdiff.mouth.mouth_model`; `--real` adds real talking-face videos (intact:
their domain check and usable share). No enhancement runs: seconds for a dozen clips.
OUTPUT/rows.jsonl and OUTPUT/summary.md keep the numbers.

    .venv/bin/python -m benchmarks.quality.mouth_model_probe --test data/synth-v2s-test2/manifest.jsonl \
        --train data/synth-v2s/train.jsonl data/synth-v2s-32spk/train.jsonl --clips 20 \
        --real ../shared/data/grid/*.mpg --output runs/mouth-model-probe
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avdiff.mouth.reliability import USABLE_SCORE
from benchmarks.common.record import record
from benchmarks.common.rows import Rows, format_mean_ci, mean_ci_values
from benchmarks.quality.lips_matter import clip_inputs, held_out_setup
from benchmarks.quality.unreliable_lips import corrupted_item

KINDS = ("occluded", "replaced")
SHARES = (0.25, 0.5, 0.75, 1.0)
METRICS = ("missed_alone", "missed_model", "false_alarms_alone", "false_alarms_model")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s", help="model folder or shipped model name (with a mouth model)")
    parser.add_argument("--test", type=Path, required=True, help="manifest of the held-out synthetic corpus")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifest(s): sentences to exclude")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--real", type=Path, nargs="*", default=[], help="real talking-face videos (intact)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def usable(pipeline, video, with_model: bool) -> np.ndarray:
    """(T,) bool: frames whose reliability reaches USABLE_SCORE, with or without the mouth model."""
    from avdiff.pipeline.inputs import mouth_video_from_array

    model = pipeline.mouth_model if with_model else None
    return mouth_video_from_array(video.rois, pipeline.crop_size, video.face_ok, mouth_model=model).trust >= USABLE_SCORE


def clip_row(pipeline, video, bad, kind: str, share: float) -> dict:
    """Missed corrupted frames and false alarms on intact ones, alone and with the model."""
    hit = (bad.rois != video.rois).any(axis=(1, 2))
    row = {"kind": kind, "share": share, "corrupted": float(hit.mean())}
    for name, with_model in (("alone", False), ("model", True)):
        ok = usable(pipeline, bad, with_model)
        row[f"missed_{name}"] = float(ok[hit].mean()) if hit.any() else float("nan")
        row[f"false_alarms_{name}"] = float((~ok[~hit]).mean()) if (~hit).any() else float("nan")
    return row


def real_row(pipeline, path: Path) -> dict:
    """A real video: whether it is in the mouth model's domain, and its usable share alone and with it."""
    video = pipeline.load_video(path)
    in_domain = pipeline.mouth_model.typical_frames(video.rois, video.face_ok) is not None
    return {"kind": "real", "share": 0.0, "in_domain": float(in_domain),
            "false_alarms_alone": float(1 - usable(pipeline, video, False).mean()),
            "false_alarms_model": float(1 - usable(pipeline, video, True).mean())}


def summary_numbers(rows: list[dict]) -> list[dict]:
    """Per kind and share: each metric's mean and 95 % interval over clips."""
    out = []
    for kind, share in sorted({(row["kind"], row["share"]) for row in rows}):
        chosen = [row for row in rows if (row["kind"], row["share"]) == (kind, share)]
        out.append({"kind": kind, "share": share, **{metric: mean_ci_values(
            [row[metric] for row in chosen if metric in row and not np.isnan(row[metric])]) for metric in METRICS}})
    return out


def summary(numbers: list[dict]) -> str:
    lines = ["Share of frames (mean ± 95 % CI over clips): corrupted frames scored usable (missed) and intact frames "
             "scored unusable (false alarms), by the clip-relative test alone and with the mouth model.", "",
             "| kind | share | " + " | ".join(METRICS) + " |", "|---" * (2 + len(METRICS)) + "|"]
    for row in numbers:
        cells = " | ".join(format_mean_ci(row[metric]) if row[metric]["n"] else "-" for metric in METRICS)
        lines.append(f"| {row['kind']} | {row['share']:.0%} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    items, pipeline = held_out_setup(args)
    if pipeline.mouth_model is None:
        raise SystemExit(f"{args.model}: no mouth model (add one with `avdiff mouth-model`)")
    rows = Rows(args.output / "rows.jsonl")
    donors = {item["speaker"]: clip_inputs(args.test, item)[1].rois for item in items}
    for item in items:
        video = clip_inputs(args.test, item)[1]
        for kind in KINDS:
            for share in SHARES:
                key = f"{kind}|{share:g}|{item['id']}"
                if key not in rows.done:
                    bad = corrupted_item(video, kind, share, donors, item, args.seed)
                    rows.add({"key": key, "item": item["id"], **clip_row(pipeline, video, bad, kind, share)})
    for path in args.real:
        if f"real|{path.name}" not in rows.done:
            rows.add({"key": f"real|{path.name}", "item": path.name, **real_row(pipeline, path)})
    numbers = summary_numbers(rows.rows)
    text = summary(numbers)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
