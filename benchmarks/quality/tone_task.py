"""The tone task of tests/test_pipeline.py as a benchmark: does a setting help or hurt it?

A tiny model is trained (the test's recipe, `--steps` steps, several `--seeds`) on sine tones
whose pitch follows the brightness of a grey "mouth" video, once per `--setting NAME=k=v,...`
(config overrides, e.g. the noise levels). Measured on held-out clips: the correlation of the
generated pitch with the video's (with the lips and with every face masked), and the SI-SDR
gain of udiffse+ on the 5 dB white-noise tone clip.

    .venv/bin/python benchmarks/tone_task.py --setting derived= \
        --setting image=diffusion.edm.sigma_min=0.002,diffusion.edm.sigma_max=80,diffusion.edm.p_mean=-1.2 \
        --seeds 0 1 2 --output benchmarks/results/tone-task
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_pipeline import (  # noqa: E402
    TONE_TRAINING,
    brightness_video,
    dominant_frequency,
    si_sdr,
    tone_example,
)
from tinycorpus import make_tiny_corpus  # noqa: E402

from avdiff.config import AVDiffConfig, load_config  # noqa: E402
from avdiff.pipeline import AVDiffusionPipeline  # noqa: E402
from avdiff.pipeline.inputs import MouthVideo  # noqa: E402
from avdiff.training.trainer import train  # noqa: E402


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
    parser.add_argument("--steps", type=int, default=200)
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
    (args.output / "tone_task.json").write_text(json.dumps(results, indent=2))
    print("| setting | pitch corr. (lips) | pitch corr. (masked) | udiffse+ SI-SDR gain (dB) |")
    print("| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['lips']:.3f} | {r['masked']:.3f} | {r['udiffse+_gain_db']:.2f} |")


if __name__ == "__main__":
    main()
