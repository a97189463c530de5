"""The tone task of tests/test_pipeline.py as a benchmark: does a setting help or hurt it?

A tiny model is trained (the test's recipe, `--steps` steps, several `--seeds`) on sine tones
whose pitch follows the brightness of a grey "mouth" video, once per `--setting NAME=k=v,...`
(config overrides, e.g. the noise levels). Measured on held-out clips: the correlation of the
generated pitch with the video's (with the lips and with every face masked), and the SI-SDR
gain of udiffse+ on the 5 dB white-noise tone clip.

    PYTHONPATH=tests .venv/bin/python -m benchmarks.quality.tone_task --setting derived= \
        --setting image=diffusion.edm.sigma_min=0.002,diffusion.edm.sigma_max=80,diffusion.edm.p_mean=-1.2 \
        --seeds 0 1 2 --output benchmarks/results/tone-task

The task is the test's own (its recipe `TONE_TRAINING`, clips and pitch measure are imported from
tests/tinycorpus.py, as the test does, so the benchmark cannot drift from it);
tests/ must be on the import path, as pytest puts it, hence `PYTHONPATH=tests`. OUTPUT/record.json
holds the rows and means with the run's provenance.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from tinycorpus import (  # tests/
    TONE_STEPS, TONE_TRAINING, brightness_video, dominant_frequency, make_tiny_corpus, si_sdr, tone_example,
)

from avdiff.config import AVDiffConfig, load_config
from avdiff.pipeline import AVDiffusionPipeline
from avdiff.pipeline.inputs import MouthVideo
from avdiff.training.trainer import train
from benchmarks.common.record import record


def pitch_correlation(pipeline: AVDiffusionPipeline, levels: np.ndarray, face: bool, seed: int) -> float:
    video = brightness_video(levels)
    out = pipeline.generate(MouthVideo(video, np.full(len(levels), face)), num_samples=2, seed=seed)
    expected = 300 + 1500 * levels
    values = []
    for audio in out.audio:
        measured = [dominant_frequency(audio[640 * j + 64 : 640 * j + 576]) for j in range(len(levels))]
        values.append(float(np.corrcoef(measured, expected)[0, 1]))
    return float(np.mean(values))


def measure(setting: list[str], seed: int, steps: int, root: Path) -> dict:
    manifest = make_tiny_corpus(root / "data", num_items=32, num_frames=40, size=32)
    overrides = [f"data.train_manifest={manifest}", *TONE_TRAINING, f"training.seed={seed}", *setting]
    result = train(load_config(AVDiffConfig, None, overrides), root / "run", max_steps=steps, cpu=True)
    pipeline = AVDiffusionPipeline.from_pretrained(result.model_dir)
    row: dict = {"seed": seed, "lips": [], "masked": []}
    for clip in range(3):
        levels, clean, noisy = tone_example(seed=7 + clip)
        row["lips"].append(pitch_correlation(pipeline, levels, True, clip))
        row["masked"].append(pitch_correlation(pipeline, levels, False, clip))
    levels, clean, noisy = tone_example()
    enhanced = pipeline.enhance(noisy, sample_rate=16000, method="udiffse+", seed=seed).audio
    row["udiffse+_gain_db"] = si_sdr(enhanced, clean) - si_sdr(noisy, clean)
    row["lips"], row["masked"] = float(np.mean(row["lips"])), float(np.mean(row["masked"]))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", action="append", required=True, metavar="NAME=k=v,...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=TONE_STEPS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    results = {}
    for spec in args.setting:
        name, _, changes = spec.partition("=")
        overrides = [c for c in changes.split(",") if c]
        rows = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(measure(overrides, seed, args.steps, Path(tmp)))
            print(name, rows[-1], flush=True)
        results[name] = {"overrides": overrides, "rows": rows,
                         **{key: float(np.mean([r[key] for r in rows])) for key in ("lips", "masked", "udiffse+_gain_db")}}
    record(args.output, args, results)
    print("| setting | pitch corr. (lips) | pitch corr. (masked) | udiffse+ SI-SDR gain (dB) |")
    print("| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['lips']:.3f} | {r['masked']:.3f} | {r['udiffse+_gain_db']:.2f} |")


if __name__ == "__main__":
    main()
