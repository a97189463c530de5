"""Probe: how do the talker's own lips and another speaker's correlate with a mixture?

The agreement (`avdiff.pipeline.av_agreement`) thresholds the windowed correlation of the lips'
predicted envelope with the mixture's. Per mixture (held-out clips x babble / real noise x SNRs),
for the talker's own lips and another speaker's (the next clip's), this records the correlation at
zero lag (median and 10th / 90th percentiles over frames), a null (the median over lags of a few
syllables, `--null-lags`, both signs), their difference and its z-score against the lags' spread;
`--detrend N` first takes a centred moving average of N frames off both envelopes. It showed that
every sentence's shared coarse shape makes another speaker's lips correlate (up to 0.45 at zero
lag) and that detrending removes it (BENCHMARKS.md, "The agreement in step").
OUTPUT/rows.jsonl and OUTPUT/summary.md keep the numbers.

    .venv/bin/python -m benchmarks.quality.agreement_probe --test data/synth-v2s-test/manifest.jsonl \
        --train data/synth-v2s/train.jsonl data/synth-v2s-32spk/train.jsonl --clips 6 --output runs/agreement-probe
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.record import record
from benchmarks.common.rows import Rows, format_mean_ci, mean_ci_values
from benchmarks.quality.lips_matter import clip_inputs, enhancement_mixtures, held_out_setup


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s")
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--train", type=Path, nargs="+", required=True)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--skip-clips", type=int, default=0)
    parser.add_argument("--snrs", type=float, nargs="*", default=[0.0, -5.0])
    parser.add_argument("--noises", nargs="*", choices=("real", "babble"), default=["babble", "real"])
    parser.add_argument("--window", type=float, default=3.0, help="seconds of the correlation window")
    parser.add_argument("--null-lags", type=int, nargs=2, default=[6, 20], metavar=("MIN", "MAX"),
                        help="video-frame lags (both signs) whose correlations make the null")
    parser.add_argument("--detrend", type=int, default=0,
                        help="subtract a centred moving average of this many frames from both envelopes first (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def lagged_correlations(lips: np.ndarray, heard: np.ndarray, window: int, lags: list[int]) -> np.ndarray:
    """(len(lags), T_v) windowed correlation of the lips delayed by each lag (edges held) with the mixture."""
    from avdiff.pipeline.av_agreement import window_correlation

    frames = np.arange(len(lips))
    return np.stack([window_correlation(lips[np.clip(frames - lag, 0, len(lips) - 1)], heard, window) for lag in lags])


def probe_row(pipeline, lips_video, noisy: np.ndarray, args: argparse.Namespace) -> dict:
    """Zero-lag and null correlations of one video's lips with one mixture."""
    from avdiff.pipeline.av_agreement import detrended, mixture_envelope
    from avdiff.timegrid import VIDEO_FPS

    bands = pipeline.lip_encoder.config.envelope_bands
    lips = pipeline.encode_lips(lips_video)[:, :bands].float().cpu().numpy()
    waveform = torch.from_numpy(noisy / np.abs(noisy).max()).float().unsqueeze(0)
    heard = mixture_envelope(pipeline.transform, waveform, bands, lips_video.num_frames)
    if args.detrend:
        lips, heard = detrended(lips, args.detrend), detrended(heard, args.detrend)
    low, high = args.null_lags
    lags = [0] + [sign * lag for lag in range(low, high + 1) for sign in (1, -1)]
    curves = lagged_correlations(lips, heard, int(round(args.window * VIDEO_FPS)), lags)
    zero, null = curves[0], np.median(curves[1:], axis=0)
    spread = curves[1:].std(axis=0) + 1e-3
    return {"zero": float(np.median(zero)), "zero_p10": float(np.percentile(zero, 10)),
            "zero_p90": float(np.percentile(zero, 90)), "null": float(np.median(null)),
            "contrast": float(np.median(zero - null)), "z": float(np.median((zero - null) / spread))}


METRICS = ("zero", "zero_p10", "zero_p90", "null", "contrast", "z")


def summary_numbers(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Per lips (own / other), noise and SNR: each metric's mean and 95 % interval over clips."""
    out = []
    for lips_kind in ("own", "other"):
        for noise in args.noises:
            for snr in args.snrs:
                chosen = [r for r in rows if (r["lips"], r["noise"], r["snr"]) == (lips_kind, noise, snr)]
                out.append({"lips": lips_kind, "noise": noise, "snr": snr,
                            **{metric: mean_ci_values([r[metric] for r in chosen]) for metric in METRICS}})
    return out


def summary(numbers: list[dict], args: argparse.Namespace) -> str:
    header = f"Detrended over {args.detrend} frames" if args.detrend else "Not detrended"
    lines = [f"{header}; window {args.window:g} s; null lags {args.null_lags[0]}-{args.null_lags[1]} frames.", "",
             "| lips | noise | SNR | " + " | ".join(METRICS) + " |", "|---" * (3 + len(METRICS)) + "|"]
    for row in numbers:
        cells = " | ".join(format_mean_ci(row[metric]) for metric in METRICS)
        lines.append(f"| {row['lips']} | {row['noise']} | {row['snr']:g} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    items, pipeline = held_out_setup(args)
    rows = Rows(args.output / "rows.jsonl")
    donors = {item["speaker"]: clip_inputs(args.test, item)[1] for item in items}
    for noise, snr, item, _, video, noisy, _ in enhancement_mixtures(items, args):
        donor = next(clip for speaker, clip in donors.items() if speaker != item["speaker"])
        for lips_kind, lips_video in (("own", video), ("other", donor)):
            key = f"{lips_kind}|{noise}|{snr:g}|{item['id']}"
            if key not in rows.done:
                numbers = probe_row(pipeline, lips_video, noisy, args)
                rows.add({"key": key, "lips": lips_kind, "noise": noise, "snr": snr, "item": item["id"], **numbers})
                print(key, {k: round(v, 3) for k, v in numbers.items()}, flush=True)
    numbers = summary_numbers(rows.rows, args)
    text = summary(numbers, args)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
