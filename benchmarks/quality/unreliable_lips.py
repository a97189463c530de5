"""Audio-visual enhancement against the share of unreliable lip frames (issue 25, visual reliability).

For held-out clips (`lips_matter`'s items) mixed with babble or real noise, the lip video is
corrupted in spans of `SPAN_FRAMES` frames covering 0, 25, 50, 75 and 100 % of the clip:
- masked: the face is missing there (`face_ok` False, what the front end reports when it finds none);
- occluded: a dark patch (a hand) covers the middle of the mouth crop;
- replaced: another held-out speaker's mouth crops (a dubbed or mismatched video).
At 0 % every kind is the intact video (run once). Each corrupted video enhances the mixture with the model's default method (or
`--method`; a VAE model folder works too), beside audio-only
(the same method without video). Rows: SI-SDR, ESTOI and the share of frames the front end's
reliability scored usable (`avdiff.mouth.reliability`). Rows go to OUTPUT/rows.jsonl as they come
(a killed run resumes); OUTPUT/summary.md and OUTPUT/record.json hold the per-share table with
the paired difference against audio-only (95 % intervals).

    .venv/bin/python -m benchmarks.quality.unreliable_lips --test data/synth-v2s-test/manifest.jsonl \
        --train data/synth-v2s/train.jsonl --skip-clips 6 --clips 6 --output benchmarks/results/unreliable-lips
"""

from __future__ import annotations

import argparse
import dataclasses
import zlib
from pathlib import Path

import numpy as np
import torch

from avdiff.mouth.reliability import USABLE_SCORE
from benchmarks.common.record import record
from benchmarks.common.run_specs import parse_options
from benchmarks.common.rows import Rows, format_mean_ci, mean_ci_values
from benchmarks.quality.lips_matter import enhancement_mixtures, held_out_setup, paired, timed

KINDS = ("masked", "occluded", "replaced")
SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
SPAN_FRAMES = 13  # about half a second
METRICS = ("si_sdr", "estoi", "usable")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s", help="model folder or shipped model name")
    parser.add_argument("--test", type=Path, required=True, help="manifest of the held-out synthetic corpus")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifest(s): sentences to exclude")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--skip-clips", type=int, default=0, help="new-sentence clips passed over first (tuning clips)")
    parser.add_argument("--snrs", type=float, nargs="*", default=[0.0])
    parser.add_argument("--noises", nargs="*", choices=("real", "babble"), default=["babble", "real"])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES))
    parser.add_argument("--lip-agreement", action="store_true", help="trust the lips only where they agree with the sound")
    parser.add_argument("--agreement-window", type=float, default=None,
                        help="seconds over which the agreement is scored (default: avdiff's)")
    parser.add_argument("--agreement-thresholds", type=float, nargs=2, default=None, metavar=("UNRELATED", "RELATED"),
                        help="correlations scored 0 and 1 (default: avdiff's)")
    parser.add_argument("--method", default=None, help="enhancement method (default: the model's own)")
    parser.add_argument("--options", nargs="*", default=[], metavar="KEY=VALUE",
                        help="method options (YAML values) over the model's own")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    args.options = parse_options(args.options)  # once, not per row
    return args


def corrupted(video, kind: str, share: float, donor: np.ndarray, rng: np.random.Generator):
    """`video` with spans covering about `share` of its frames made unreliable in the way `kind` says."""
    from avdiff.pipeline.inputs import MouthVideo

    frames = video.num_frames
    blocks = [(start, min(start + SPAN_FRAMES, frames)) for start in range(0, frames, SPAN_FRAMES)]
    wanted, spans = int(round(share * frames)), []
    for index in rng.permutation(len(blocks)):  # whole spans in random places, the last one cut to the share
        start, stop = blocks[index]
        covered = sum(b - a for a, b in spans)
        if covered < wanted:
            spans.append((start, min(stop, start + wanted - covered)))
    rois, face_ok = video.rois.copy(), video.face_ok.copy()
    size = rois.shape[-1]
    lo, hi = int(0.2 * size), int(0.8 * size)
    for start, stop in spans:
        if kind == "masked":
            face_ok[start:stop] = False
        elif kind == "occluded":
            rois[start:stop, lo:hi, lo:hi] = 25
        else:
            rois[start:stop] = np.resize(donor, (len(donor) + frames, *donor.shape[1:]))[start:stop]
    return MouthVideo(rois, face_ok)


def corrupted_item(video, kind: str, share: float, donors: dict[str, np.ndarray], item: dict, seed: int):
    """`video` of `item` corrupted as `corrupted` does, with another speaker's crops from `donors`
    (speaker -> crops) and spans drawn from a generator seeded by the run's seed, the share, the kind
    and the item: the same corruption in every script that asks for it."""
    donor = next(rois for speaker, rois in donors.items() if speaker != item["speaker"])
    rng = np.random.default_rng([seed, int(share * 100), zlib.crc32(f"{kind}|{item['id']}".encode())])
    return corrupted(video, kind, share, donor, rng)


def run_one(pipeline, noisy: np.ndarray, video, args: argparse.Namespace) -> tuple[np.ndarray, int]:
    out = pipeline.enhance(noisy, sample_rate=16000, video=video, seed=args.seed, lip_agreement=args.lip_agreement,
                           method=args.method, **({"options": args.options} if args.options else {}))
    return out.audio, out.network_calls


def score_all(pipeline, items: list[dict], args: argparse.Namespace, rows: Rows) -> None:
    from avdiff.evaluation.metrics import compute_metrics
    from benchmarks.quality.lips_matter import clip_inputs

    donors = {item["speaker"]: clip_inputs(args.test, item)[1].rois for item in items}
    for noise, snr, item, _, video, noisy, reference in enhancement_mixtures(items, args):
        cases = [("audio-only", 0.0), ("intact", 0.0)] + [(kind, share) for kind in args.kinds
                                                           for share in args.shares if share > 0]
        for kind, share in cases:
            key = f"{kind}|{share:g}|{noise}|{snr:g}|{item['id']}"
            if key in rows.done:
                continue
            bad = (None if kind == "audio-only" else video if kind == "intact"
                   else corrupted_item(video, kind, share, donors, item, args.seed))
            estimate, calls, seconds = timed(lambda: run_one(pipeline, noisy, bad, args))
            scores = compute_metrics(reference, estimate, metrics=("si_sdr", "estoi")).values
            usable = 0.0 if bad is None else float((pipeline.load_video(bad).trust >= USABLE_SCORE).mean())
            rows.add({"key": key, "system": kind, "share": share, "noise": noise, "snr": snr, "item": item["id"],
                      "calls": calls, "seconds": seconds, "usable": usable, **scores})
            print(f"{key}: SI-SDR {scores['si_sdr']:.2f} dB, usable {usable:.2f}", flush=True)


def agreement_settings(args: argparse.Namespace):
    """The agreement's settings the run asks for (avdiff's defaults where it names none)."""
    from avdiff.pipeline.av_agreement import DEFAULT_AGREEMENT

    given = {} if args.agreement_window is None else {"window_seconds": args.agreement_window}
    if args.agreement_thresholds:
        given.update(zip(("unrelated", "related"), args.agreement_thresholds))
    return dataclasses.replace(DEFAULT_AGREEMENT, **given)


def summary_numbers(rows: list[dict]) -> list[dict]:
    """Per noise, SNR, kind and share: each metric's mean and the paired SI-SDR / ESTOI difference
    against audio-only on the same mixtures."""
    out = []
    for noise, snr in sorted({(row["noise"], row["snr"]) for row in rows}):
        mixture = [row for row in rows if row["noise"] == noise and row["snr"] == snr]
        for kind in [k for k in KINDS if any(row["system"] == k for row in mixture)]:
            for share in sorted({0.0} | {row["share"] for row in mixture if row["system"] == kind}):
                system = "intact" if share == 0 else kind
                subset = [row for row in mixture if row["system"] == system and row["share"] == share]
                tagged = [{**row, "system": "x"} for row in subset] + [
                    {**row, "system": "ao"} for row in mixture if row["system"] == "audio-only"]
                out.append({"noise": noise, "snr": snr, "kind": kind, "share": share,
                            **{m: mean_ci_values([row[m] for row in subset]) for m in METRICS},
                            **{f"delta_{m}": mean_ci_values(paired(tagged, "x", "ao", m, {})) for m in ("si_sdr", "estoi")}})
    return out


def summary(numbers: list[dict], args: argparse.Namespace) -> str:
    lines = ["| noise | SNR | lips made unreliable | share | SI-SDR | Δ SI-SDR vs audio-only | Δ ESTOI | frames scored usable |",
             "|" + " --- |" * 8]
    lines += [f"| {e['noise']} | {e['snr']:g} dB | {e['kind']} | {e['share']:.0%} | {format_mean_ci(e['si_sdr'])} | "
              f"{format_mean_ci(e['delta_si_sdr'])} | {format_mean_ci(e['delta_estoi'])} | {format_mean_ci(e['usable'])} |"
              for e in numbers]
    agreement = agreement_settings(args) if args.lip_agreement else "off"
    return (f"Model {args.model}; {args.test}, sentences never trained on; lips' agreement: {agreement}; spans of {SPAN_FRAMES} "
            "frames; mean ± 95 % CI, paired against audio-only on the same mixtures.\n\n" + "\n".join(lines) + "\n")


def plot(numbers: list[dict], path: Path, title: str) -> None:
    """Δ SI-SDR against audio-only over the unreliable share, one line per kind, one panel per noise and SNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(entry["noise"], entry["snr"]) for entry in numbers})
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, (noise, snr) in zip(axes[0], panels):
        for kind in KINDS:
            entries = [e for e in numbers if e["noise"] == noise and e["snr"] == snr and e["kind"] == kind]
            if entries:
                shares = [100 * e["share"] for e in entries]
                means = [e["delta_si_sdr"]["mean"] for e in entries]
                errors = [e["delta_si_sdr"]["ci95"] or 0.0 for e in entries]
                axis.errorbar(shares, means, yerr=errors, marker="o", capsize=3, label=kind)
        axis.axhline(0.0, color="gray", linewidth=0.8)
        axis.axhline(-0.2, color="gray", linewidth=0.8, linestyle=":")
        axis.set(title=f"{noise} noise, {snr:g} dB", xlabel="unreliable frames (%)", ylabel="Δ SI-SDR vs audio-only (dB)")
        axis.legend()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    items, pipeline = held_out_setup(args)
    pipeline.agreement = agreement_settings(args)
    rows = Rows(args.output / "rows.jsonl")
    print(f"{len(items)} held-out clips; rows so far: {len(rows.rows)}", flush=True)
    score_all(pipeline, items, args, rows)
    numbers = summary_numbers(rows.rows)
    text = summary(numbers, args)
    (args.output / "summary.md").write_text(text)
    plot(numbers, args.output / "unreliable_lips.png",
         f"{args.model}, {pipeline.enhancement_plan(args.method).method}, {'with' if args.lip_agreement else 'without'} "
         "the lips' agreement with the sound")
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
