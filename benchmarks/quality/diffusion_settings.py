"""Quality of trained models under diffusion and posterior-sampling settings, on held-out data.

Three parts, each resumable (rows already in `OUTPUT/<part>.jsonl` are not recomputed):

- `loss`: denoising loss per noise level on the synthetic corpus's validation clips (whole
  clips, fixed noise), with the lips and with every face masked. The loss is EDM's weighted
  error lambda(sigma) |D - x0|^2 with lambda = (sigma^2 + sd^2) / (sigma sd)^2, at noise
  levels sigma = r * sigma_data: comparable between models trained with different settings.
- `v2s`: video-to-speech on the synthetic test clips (the model's sampler, guidance w = 2 as the
  demo) and the same model with every face masked; STOI / ESTOI against the reference.
- `enhance`: real speech (the GRID clips of ../shared/data/grid and utterances of
  ../shared/data/speech, 2.04 s from the middle of each) mixed with the real noises of
  ../shared/data/noise at each SNR; every method (a `--variant NAME=METHOD[:key=value,...]`
  runs a method with changed options), noisereduce and the noisy input; SI-SDR,
  PESQ-WB, ESTOI. Audio-only: the real clips have no prepared mouth crops.

    .venv/bin/python -m benchmarks.quality.diffusion_settings --model after=runs/synth/model \
        --synth data/synth --parts loss v2s enhance --output benchmarks/results/diffusion-settings

`summary.md` in OUTPUT holds the tables (mean +- 95 % CI, Student's t), `record.json` the same
numbers with the run's provenance. Runs with the avdiff of another checkout too
(PYTHONPATH=that/checkout:. from this repository's root): methods it does not know are skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.paths import SHARED_DATA
from benchmarks.common.record import record
from benchmarks.common.rows import Rows, format_mean_ci, grouped_summary, mean_ci_values, summary_table
from benchmarks.common.run_specs import parse_run_spec

CLIP_SAMPLES = 32640  # 2.04 s = 256 STFT frames: one posterior chunk
LEVEL_RATIOS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="model folder(s)")
    parser.add_argument("--synth", type=Path, default=None, help="synthetic corpus (valid.jsonl, test.jsonl)")
    parser.add_argument("--parts", nargs="+", default=["loss", "v2s", "enhance"], choices=["loss", "v2s", "enhance"])
    parser.add_argument("--methods", nargs="+", default=["udiffse+", "udiffse", "dps", "udiffse-paper"])
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=METHOD[:k=v,...]",
                        help="a method with changed options, e.g. every2=udiffse+:likelihood_every=2")
    parser.add_argument("--no-baselines", action="store_true", help="enhance: skip the noisy and noisereduce rows")
    parser.add_argument("--loss-clips", type=int, default=24)
    parser.add_argument("--v2s-clips", type=int, default=6)
    parser.add_argument("--grid-clips", type=int, default=3)
    parser.add_argument("--speech-clips", type=int, default=3)
    parser.add_argument("--snrs", type=float, nargs="+", default=[0.0, 5.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--summary-only", action="store_true", help="only rebuild summary.md from OUTPUT's rows")
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- part 1: loss
@torch.no_grad()
def loss_part(name: str, pipeline, synth: Path, count: int, seed: int, rows: Rows) -> None:
    import soundfile as sf

    from avdiff.data.manifest import read_manifest, resolve
    from avdiff.pipeline.inputs import MouthVideo

    sd = pipeline.denoiser.formulation.sigma_data
    manifest = synth / "valid.jsonl"
    for index, item in enumerate(read_manifest(manifest)[:count]):
        audio, _ = sf.read(resolve(manifest, item["audio"]), dtype="float32")
        wave = torch.from_numpy(audio / max(float(np.abs(audio).max()), 1e-9)).unsqueeze(0)
        x0 = pipeline.transform.encode(wave)
        rois = np.load(resolve(manifest, item["video"]))
        cond, mask = pipeline.condition(MouthVideo(rois, np.ones(len(rois), dtype=bool)), x0.shape[-1])
        generator = torch.Generator().manual_seed(seed + index)
        for ratio in LEVEL_RATIOS:
            key = f"{name}|{item['id']}|{ratio}"
            if key in rows.done:
                continue
            sigma = torch.tensor([ratio * sd])
            noisy = x0 + sigma * torch.randn(x0.shape, generator=generator)
            weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
            row = {"key": key, "model": name, "item": item["id"], "ratio": ratio}
            for label, m in (("lips", mask), ("masked", torch.zeros_like(mask))):
                denoised = pipeline.denoiser(noisy, sigma, cond=cond, cond_mask=m)
                row[label] = float(weight * (denoised - x0).square().mean())
            rows.add(row)


def loss_summary(rows: list[dict]) -> list[dict]:
    """Per model and condition (lips, masked): mean ± CI of the loss at each noise level, and the overall mean."""
    summary = []
    for model in sorted({row["model"] for row in rows}):
        for label in ("lips", "masked"):
            levels = {f"{r:g}": mean_ci_values([row[label] for row in rows if row["model"] == model and row["ratio"] == r])
                      for r in LEVEL_RATIOS}
            overall = float(np.mean([row[label] for row in rows if row["model"] == model]))
            summary.append({"model": model, "condition": label, "levels": levels, "mean": overall})
    return summary


def loss_table(summary: list[dict]) -> str:
    """The markdown of `loss_summary`."""
    header = "| model | " + " | ".join(f"σ = {r:g} σ_data" for r in LEVEL_RATIOS) + " | mean |"
    lines = [header, "|" + " --- |" * (len(LEVEL_RATIOS) + 2)]
    for entry in summary:
        cells = [format_mean_ci(entry["levels"][f"{r:g}"]) for r in LEVEL_RATIOS]
        lines.append(f"| {entry['model']} ({entry['condition']}) | " + " | ".join(cells) + f" | {entry['mean']:.3f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- part 2: video-to-speech
def v2s_part(name: str, pipeline, synth: Path, count: int, seed: int, rows: Rows) -> None:
    import soundfile as sf

    from avdiff.data.manifest import read_manifest, resolve
    from avdiff.evaluation.metrics import compute_metrics
    from avdiff.pipeline.inputs import MouthVideo

    manifest = synth / "test.jsonl"
    for item in read_manifest(manifest)[:count]:
        rois = np.load(resolve(manifest, item["video"]))
        clean, _ = sf.read(resolve(manifest, item["audio"]), dtype="float32")
        for system, face_ok, guidance in (("lips", True, 2.0), ("masked", False, 1.0)):
            key = f"{name}|{item['id']}|{system}"
            if key in rows.done:
                continue
            start = time.perf_counter()
            out = pipeline.generate(MouthVideo(rois, np.full(len(rois), face_ok)), seed=seed, guidance_scale=guidance)
            scores = compute_metrics(clean, out.audio[0], metrics=("stoi", "estoi"))
            rows.add({"key": key, "model": name, "item": item["id"], "system": system,
                      "seconds": time.perf_counter() - start, **scores.values})


# ----------------------------------------------------------------------------- part 3: enhancement
def real_clips(grid_count: int, speech_count: int) -> list[tuple[str, np.ndarray]]:
    """2.04 s from the middle of GRID clips and of real-speech utterances (both 16 kHz mono)."""
    from avdiff.media.audio import load_audio

    paths = sorted((SHARED_DATA / "grid").glob("*.mpg"))[:grid_count]
    speech = SHARED_DATA / "speech"
    libri = sorted((speech / "librispeech-train-clean-100").rglob("*.flac"))
    ocean = sorted((speech / "speechocean762-train").rglob("*.flac"))
    picks = libri[:: max(1, len(libri) // max(1, speech_count))][: (speech_count + 1) // 2]
    picks += ocean[:: max(1, len(ocean) // max(1, speech_count))][: speech_count // 2]
    clips = []
    for path in paths + picks:
        audio = load_audio(path, 16000)
        if len(audio) < CLIP_SAMPLES:
            continue
        start = (len(audio) - CLIP_SAMPLES) // 2
        clips.append((path.stem, audio[start : start + CLIP_SAMPLES].astype(np.float32)))
    if not clips:
        sys.exit(f"no real clips found under {SHARED_DATA} (../shared/data beside the repo)")
    return clips


def parse_variants(methods: list[str], variants: list[str]) -> dict[str, tuple[str, dict]]:
    """system name -> (method, settings changes)."""
    systems = {method: (method, {}) for method in methods}
    for text in variants:
        name, _, spec = text.partition("=")
        systems[name] = parse_run_spec(spec)
    return systems


def known_settings(method: str, changes: dict) -> tuple[str, dict] | None:
    """(method, option changes) checked against the registered posterior methods, or None when this
    checkout lacks the method; an option the method does not have stops the run."""
    from avdiff.errors import ConfigError
    from avdiff.posterior.registry import METHODS

    if method not in METHODS:
        return None
    try:
        METHODS.get(method).settings(changes)
    except ConfigError as error:
        raise SystemExit(f"{method}: {error}") from error
    return method, changes


def enhance_part(name: str, pipeline, systems: dict, args: argparse.Namespace, rows: Rows) -> None:
    from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr
    from avdiff.evaluation.baselines import noisereduce_file
    from avdiff.evaluation.metrics import compute_metrics

    bank = NoiseBank(find_noise_dir())
    metrics = ("si_sdr", "pesq_wb", "estoi")
    clips = real_clips(args.grid_clips, args.speech_clips)
    for snr in args.snrs:
        rng = np.random.default_rng(args.seed + int(snr * 10))
        for clip_id, clean in clips:
            noisy, reference = mix_at_snr(clean, bank.excerpt(len(clean), rng), snr)
            candidates = {} if args.no_baselines else {"noisy": lambda: noisy,
                                                        "noisereduce": lambda: noisereduce_file(noisy)}
            for system, (method, changes) in systems.items():
                resolved = known_settings(method, changes)
                if resolved is not None:
                    candidates[system] = (lambda r=resolved: pipeline.enhance(
                        noisy, sample_rate=16000, method=r[0], options=r[1], seed=args.seed))
            for system, run in candidates.items():
                model = name if system not in ("noisy", "noisereduce") else "-"
                key = f"{model}|{system}|{snr:g}|{clip_id}"
                if key in rows.done:
                    continue
                start = time.perf_counter()
                out = run()
                calls = getattr(out, "network_calls", 0)
                audio = getattr(out, "audio", out)
                scores = compute_metrics(reference, audio, metrics=metrics)
                rows.add({"key": key, "model": model, "system": system, "snr": snr, "item": clip_id,
                          "calls": calls, "seconds": time.perf_counter() - start, **scores.values})


def summaries(parts: dict[str, Rows]) -> tuple[list[str], dict]:
    """The markdown sections of summary.md and the same numbers for record.json."""
    sections, numbers = [], {}
    if "loss" in parts:
        numbers["loss"] = loss_summary(parts["loss"].rows)
        sections.append("## Validation loss per noise level\n\n" + loss_table(numbers["loss"]))
    if "v2s" in parts:
        group, metrics = ("model", "system"), ("stoi", "estoi")
        numbers["v2s"] = grouped_summary(parts["v2s"].rows, group, metrics)
        sections.append("## Video-to-speech\n\n" + summary_table(numbers["v2s"], group, metrics))
    if "enhance" in parts:
        group, metrics = ("snr", "model", "system"), ("si_sdr", "pesq_wb", "estoi")
        numbers["enhance"] = grouped_summary(parts["enhance"].rows, group, metrics)
        sections.append("## Enhancement\n\n" + summary_table(numbers["enhance"], group, metrics))
    return sections, numbers


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    models = dict(spec.split("=", 1) for spec in args.model)
    systems = parse_variants(args.methods, args.variant)
    parts = {part: Rows(args.output / f"{part}.jsonl") for part in args.parts}
    for name, folder in ({} if args.summary_only else models).items():
        pipeline = AVDiffusionPipeline.from_pretrained(folder)
        if "loss" in parts:
            loss_part(name, pipeline, args.synth, args.loss_clips, args.seed, parts["loss"])
        if "v2s" in parts:
            v2s_part(name, pipeline, args.synth, args.v2s_clips, args.seed, parts["v2s"])
        if "enhance" in parts:
            enhance_part(name, pipeline, systems, args, parts["enhance"])
    sections, numbers = summaries(parts)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "summary.md").write_text("\n\n".join(sections) + "\n")
    record(args.output, args, numbers)
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
