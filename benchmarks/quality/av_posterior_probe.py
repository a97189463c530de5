"""Where do the lips get lost in audio-visual enhancement? Issue 25's cheap probes, on a few clips.

Each system enhances the same mixtures with the same seeds (`udiffse+` at its defaults unless the
name says otherwise; audio-visual at guidance w = 1):
- `audio-only`, `audio-visual`: no condition, or the lips';
- `audio-visual, oracle envelope`: the clean speech's own envelope in place of the lips'. If this
  too gains little over audio-only, the posterior is the limit, not the lips;
- `... lambda=X`: the likelihood weight (`likelihood_weight`, default 1.5) changed. A weaker pull
  towards y leaves the prior, and so the lips, more say;
- `... oracle noise`: the noise variance fixed to the true |y - x|^2 in the model's compressed
  domain and never refitted. If the lips gain here, the fitted noise model absorbing the target
  is the limit.
And a trace of the audio-visual pass (`trace.jsonl`): at each level, on the sampler's own states,
the RMS of D(x; lips) - D(x; faces masked) against the RMS of y - D(x; lips), i.e. how much the
lips move the prior's estimate next to how far the likelihood wants to move it.

Rows go to OUTPUT/rows.jsonl as they come (a killed run resumes); OUTPUT/summary.md has the means
with 95 % intervals and the paired differences against audio-only.

    .venv/bin/python -m benchmarks.quality.av_posterior_probe --model v2s \\
        --test data/synth-v2s-test/manifest.jsonl --train data/synth-v2s/train.jsonl --clips 6 \\
        --output benchmarks/results/av-posterior-probe
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from avdiff.posterior import METHODS, PosteriorOutput, PosteriorProblem, power, register_method
from avdiff.posterior.nmf import NoiseModel
from avdiff.posterior.schedule import posterior_schedule
from avdiff.posterior.udiffse_plus import UDiffSEPlus, UDiffSEPlusSettings, _TweediePass
from benchmarks.common.record import record
from benchmarks.common.rows import Rows, format_mean_ci, grouped_summary, mean_ci_values, summary_table
from benchmarks.quality.lips_matter import (
    Scorer,
    enhancement_mixtures,
    held_out_setup,
    paired,
    true_envelope,
    with_oracle_envelope,
)

METRICS = ("si_sdr", "pesq_wb", "estoi", "wer_grid")
ONE_CHUNK = 4096  # STFT frames: every probe clip is enhanced as one chunk (the oracle noise is per clip)
ORACLE_NOISE = "probe-oracle-noise"  # the method's name while the probe runs


@dataclass(frozen=True)
class OracleNoiseSettings(UDiffSEPlusSettings):
    """udiffse+'s settings; the noise model is the oracle's and is never refitted."""


class _FixedNoisePass(_TweediePass):
    def refit(self, sigma: float, denoised: Tensor) -> None:
        """The oracle noise model stays as given."""


class OracleNoise(UDiffSEPlus):
    """udiffse+ with the noise variance V fixed to `oracle_power` (set by the probe before each run)."""

    settings_class = OracleNoiseSettings
    pass_class = _FixedNoisePass
    oracle_power: ClassVar[Tensor | None] = None  # (1, F, T) true |y - x|^2 of the clip being enhanced

    def run(self, problem: PosteriorProblem) -> PosteriorOutput:
        if OracleNoise.oracle_power is None or problem.y.shape[0] != 1:
            raise RuntimeError(f"{ORACLE_NOISE}: set OracleNoise.oracle_power and enhance one chunk")
        width = problem.y.shape[-1]
        oracle = OracleNoise.oracle_power[..., :width].to(problem.y)
        floor = float(oracle.mean()) * 1e-3  # the padded frames beyond the clip: almost no noise
        oracle = torch.nn.functional.pad(oracle, (0, width - oracle.shape[-1]), value=floor).clamp_min(floor)
        bins = oracle.shape[1]
        noise = NoiseModel(torch.eye(bins).unsqueeze(0).to(oracle), oracle)  # V = I @ oracle
        settings = self.settings
        schedule = posterior_schedule(problem.formulation, settings)
        one_pass = self.pass_class(problem.denoiser_for(settings.num_samples), problem.y.to(torch.float32), schedule,
                                   settings, list(problem.generators), problem.formulation.sigma_data, noise)
        state = one_pass.run()
        return PosteriorOutput(sample=one_pass.finish(state), noise=noise, network_calls=one_pass.calls)


def register_oracle_noise() -> None:
    """Register `OracleNoise` as ORACLE_NOISE, in the probe's process only (no method for users)."""
    if ORACLE_NOISE not in METHODS:
        register_method(ORACLE_NOISE)(OracleNoise)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s", help="audio-visual model folder or shipped model name")
    parser.add_argument("--test", type=Path, required=True, help="manifest of the held-out synthetic corpus")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifest(s): sentences to exclude")
    parser.add_argument("--clips", type=int, default=6, help="test clips (the first N new sentences)")
    parser.add_argument("--snrs", type=float, nargs="*", default=[0.0])
    parser.add_argument("--noises", nargs="*", choices=("real", "babble"), default=["babble", "real"])
    parser.add_argument("--lambdas", type=float, nargs="*", default=[0.5], help="likelihood weights besides the default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def oracle_noise_power(pipeline, noisy: np.ndarray, reference: np.ndarray) -> Tensor:
    """(1, F, T) |y - x|^2 of the compressed spectrograms, scaled as `pipeline.enhance` scales y."""
    peak = float(np.abs(noisy).max())
    encode = pipeline.transform.encode
    y = encode(torch.from_numpy(noisy / peak).float().unsqueeze(0))
    x = encode(torch.from_numpy(reference / peak).float().unsqueeze(0))
    return power(y - x)


def probe_systems(pipeline, noisy: np.ndarray, reference: np.ndarray, clean: np.ndarray, video,
                  args: argparse.Namespace) -> dict[str, Callable[[], tuple[np.ndarray, int]]]:
    """system name -> a function giving (estimate, network calls)."""
    def run(with_video, method: str = "udiffse+", **options: Any) -> tuple[np.ndarray, int]:
        out = pipeline.enhance(noisy, sample_rate=16000, video=with_video, method=method, seed=args.seed,
                               options=options, chunk_frames=ONE_CHUNK)
        return out.audio, out.network_calls

    def oracle_noise(with_video) -> tuple[np.ndarray, int]:
        OracleNoise.oracle_power = oracle_noise_power(pipeline, noisy, reference)
        try:
            return run(with_video, method=ORACLE_NOISE)
        finally:
            OracleNoise.oracle_power = None

    envelope = true_envelope(pipeline, clean, video.num_frames)
    systems = {"noisy": lambda: (noisy, 0), "audio-only": lambda: run(None), "audio-visual": lambda: run(video),
               "audio-visual, oracle envelope": lambda: with_oracle_envelope(pipeline, envelope, lambda: run(video)),
               "audio-only, oracle noise": lambda: oracle_noise(None),
               "audio-visual, oracle noise": lambda: oracle_noise(video)}
    for weight in args.lambdas:
        systems[f"audio-only, lambda={weight:g}"] = lambda w=weight: run(None, likelihood_weight=w)
        systems[f"audio-visual, lambda={weight:g}"] = lambda w=weight: run(video, likelihood_weight=w)
    return systems


def trace_lips_effect(pipeline, noisy: np.ndarray, video, seed: int) -> list[dict]:
    """Per network call of the audio-visual pass: sigma, RMS of D(lips) - D(masked), RMS of y - D(lips)."""
    peak = float(np.abs(noisy).max())
    y = pipeline.transform.encode(torch.from_numpy(noisy / peak).float().unsqueeze(0))
    frames, original, rows = y.shape[-1], pipeline._denoiser_for, []

    def traced(cond: Tensor | None, mask: Tensor | None, guidance_scale: float):
        with_lips = original(cond, mask, guidance_scale)
        masked = original(cond, None if mask is None else torch.zeros_like(mask), guidance_scale)

        def run(x: Tensor, sigma: Tensor) -> Tensor:
            lips, blind = with_lips(x, sigma), masked(x, sigma)
            level = float(sigma.flatten()[0]) / pipeline.denoiser.formulation.sigma_data
            rows.append({"sigma_over_sigma_data": level, "lips_effect": _rms(lips - blind, frames),
                         "likelihood_residual": _rms(y.to(lips) - lips, frames), "estimate": _rms(lips, frames)})
            return lips

        return run

    pipeline._denoiser_for = traced
    try:
        pipeline.enhance(noisy, sample_rate=16000, video=video, method="udiffse+", seed=seed, chunk_frames=ONE_CHUNK,
                         options={"num_samples": 1})
    finally:
        pipeline._denoiser_for = original
    return rows


def _rms(values: Tensor, frames: int) -> float:
    """Root mean square over the clip's own frames (not the chunk's padding)."""
    return float(values[..., :frames].float().square().mean().sqrt())


def score(pipeline, items: list[dict], args: argparse.Namespace, scorer: Scorer, rows: Rows) -> None:
    """Rows of every (noise, SNR, clip, system) not yet in `rows`, and the trace of every mixture."""
    for noise_kind, snr, item, clean, video, noisy, reference in enhancement_mixtures(items, args):
        where = f"{noise_kind}|{snr:g}|{item['id']}"
        for system, run in probe_systems(pipeline, noisy, reference, clean, video, args).items():
            if f"{system}|{where}" in rows.done:
                continue
            estimate, calls = run()
            rows.add({"key": f"{system}|{where}", "system": system, "noise": noise_kind, "snr": snr,
                      "item": item["id"], "calls": calls, **scorer(reference, estimate, item["text"], METRICS)})
        trace_path = args.output / "trace.jsonl"
        if f"trace|{where}" not in rows.done:
            with trace_path.open("a") as handle:
                for row in trace_lips_effect(pipeline, noisy, video, args.seed):
                    handle.write(json.dumps({"noise": noise_kind, "snr": snr, "item": item["id"], **row}) + "\n")
            rows.add({"key": f"trace|{where}", "system": "trace", "noise": noise_kind, "snr": snr, "item": item["id"]})


def summary_numbers(rows: list[dict], trace: list[dict]) -> dict:
    """Means per system, paired differences against audio-only, and the trace's ratio per level."""
    scored = [row for row in rows if row["system"] != "trace"]
    groups = sorted({(row["noise"], row["snr"]) for row in scored})
    systems = sorted({row["system"] for row in scored} - {"audio-only", "noisy"})
    numbers = {"systems": grouped_summary(scored, ("noise", "snr", "system"), METRICS), "minus_audio_only": [
        {"noise": noise, "snr": snr, "system": system,
         **{m: mean_ci_values(paired(scored, system, "audio-only", m, {"noise": noise, "snr": snr})) for m in METRICS}}
        for noise, snr in groups for system in systems]}
    levels = sorted({round(row["sigma_over_sigma_data"], 3) for row in trace}, reverse=True)
    numbers["trace"] = [
        {"noise": noise, "sigma_over_sigma_data": level, **{key: float(np.mean([
            row[key] for row in trace if row["noise"] == noise and round(row["sigma_over_sigma_data"], 3) == level]))
            for key in ("lips_effect", "likelihood_residual", "estimate")}}
        for noise in sorted({row["noise"] for row in trace}) for level in levels]
    return numbers


def summary(numbers: dict, args: argparse.Namespace) -> str:
    """summary.md: the tables of `summary_numbers`."""
    diff = ["| noise | SNR | system | " + " | ".join(f"Δ {m}" for m in METRICS) + " |", "|" + " --- |" * 7]
    diff += [f"| {e['noise']} | {e['snr']:g} | {e['system']} | " + " | ".join(format_mean_ci(e[m]) for m in METRICS)
             + " |" for e in numbers["minus_audio_only"]]
    trace = ["| noise | σ / σ_data | RMS D(lips) - D(masked) | RMS y - D(lips) | ratio |", "|" + " --- |" * 5]
    trace += [f"| {e['noise']} | {e['sigma_over_sigma_data']:.2f} | {e['lips_effect']:.4f} | "
              f"{e['likelihood_residual']:.4f} | {e['lips_effect'] / max(e['likelihood_residual'], 1e-12):.3f} |"
              for e in numbers["trace"]]
    return "\n\n".join([f"Model {args.model}; {args.clips} held-out clips; udiffse+ unless named; mean ± 95 % CI.",
                        summary_table(numbers["systems"], ("noise", "snr", "system")),
                        "Paired differences (system - audio-only):", "\n".join(diff),
                        "The lips' effect on the denoised estimate against the likelihood's residual, per level "
                        "(audio-visual pass, one sample):", "\n".join(trace)]) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    items, pipeline = held_out_setup(args)
    register_oracle_noise()
    args.output.mkdir(parents=True, exist_ok=True)
    rows = Rows(args.output / "rows.jsonl")
    score(pipeline, items, args, Scorer(None), rows)
    trace_path = args.output / "trace.jsonl"
    trace = [json.loads(line) for line in trace_path.read_text().splitlines()] if trace_path.is_file() else []
    numbers = summary_numbers(rows.rows, trace)
    text = summary(numbers, args)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
