"""Enhancement of real speech by held-out speakers, against the noisy input and noisereduce.

Clean clips: `--per-speaker` utterances of every speaker in the test manifests of
`avdiff split` (speakers the model never trained on), `--seconds` from the middle of each.
Noise: the real recordings of ../shared/data/noise ("real", one at random per mixture), babble
("babble": four utterances of other held-out speakers, each at equal power, summed), and any kind
of `benchmarks/common/noises.py` (`real1`.. `wind`; `tuning`, `held-out`, `unseen` and `unseen-2`
name its sets: settings are chosen on the first and reported on a later one), at every `--snrs`
SNR; `--clean` adds the clean clips themselves as input (rows of noise "clean": an enhancer
should give them back). Systems: the noisy input, noisereduce, and each `--methods` method of the model. Metrics:
SI-SDR, PESQ-WB, ESTOI with 95 % intervals; rows are kept in OUTPUT/rows.jsonl, so a killed run
resumes and a second run with other methods or SNRs adds to the same table (OUTPUT/summary.md;
OUTPUT/record.json: the same numbers with the run's provenance).

    .venv/bin/python -m benchmarks.quality.enhance_real --model speech-prior \
        --test data/speech/librispeech/test.jsonl data/speech/speechocean762/test.jsonl \
        --methods udiffse+ --snrs -5 0 5 10 20 --output benchmarks/results/enhance-real
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.engines import PipelinesByEngine, pop_engine
from benchmarks.common.record import record
from benchmarks.common.rows import Rows, format_mean_ci, grouped_summary, mean_ci_values, summary_table
from benchmarks.quality.diffusion_settings import known_settings, parse_variants

METRICS = ("si_sdr", "pesq_wb", "estoi")
BASELINES = ("noisy", "noisereduce")
PLAN_KEYS = ("chunk_frames", "batch_size")  # plan settings a --variant may change besides the method's options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="speech-prior", help="model folder or shipped model name")
    parser.add_argument("--test", type=Path, nargs="+", required=True, help="test manifests (held-out speakers)")
    parser.add_argument("--per-speaker", type=int, default=1, help="utterances per held-out speaker")
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length from each utterance's middle")
    parser.add_argument("--snrs", type=float, nargs="+", default=[-5, 0, 5, 10, 20])
    parser.add_argument("--noises", nargs="+", default=["real", "babble"], metavar="KIND",
                        help="real, babble, a kind of benchmarks/common/noises.py, or its set: tuning, held-out, "
                        "unseen, unseen-2")
    parser.add_argument("--clean", action="store_true", help="also the clean clips as input (noise 'clean')")
    parser.add_argument("--valid", type=Path, nargs="*", default=[],
                        help="manifests of speakers never tested on: the voices of the 'crowd' noise")
    parser.add_argument("--methods", nargs="+", default=["udiffse+"], help="enhancement methods to run")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=METHOD[:key=value,...]",
                        help="also run METHOD with changed options (or plan settings: chunk_frames, batch_size) "
                        "under the name NAME (repeatable)")
    parser.add_argument("--default-method", default="udiffse+", help="the method the targets are checked for")
    parser.add_argument("--steps", type=int, default=None, help="noise levels (default: each method's)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N clips (trial runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--backend", default="torch", help="the score network's engine for systems whose spec "
                        "does not say (backend=NAME in a --variant spec; default: %(default)s)")
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def held_out_clips(manifests: list[Path], per_speaker: int, seconds: float) -> list[tuple[str, str, np.ndarray]]:
    """(clip id, speaker, audio) of the first `per_speaker` utterances of every test speaker."""
    from avdiff.data.manifest import read_manifest, resolve
    from avdiff.media.audio import load_audio

    length = int(seconds * 16000)
    clips = []
    for manifest in manifests:
        by_speaker: dict[str, list[dict]] = defaultdict(list)
        for item in sorted(read_manifest(manifest), key=lambda item: item["id"]):
            by_speaker[item["speaker"]].append(item)
        for speaker, items in sorted(by_speaker.items()):
            for item in items[:per_speaker]:
                audio = load_audio(resolve(manifest, item["audio"]), 16000)
                start = max(0, (len(audio) - length) // 2)
                clips.append((item["id"], speaker, audio[start : start + length].astype(np.float32)))
    return clips


def babble(clips: list[tuple[str, str, np.ndarray]], speaker: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """Four utterances of other held-out speakers at equal power, each from a random offset."""
    others = [audio for _, who, audio in clips if who != speaker]
    mixture = np.zeros(length, np.float32)
    for index in rng.choice(len(others), size=min(4, len(others)), replace=False):
        voice = np.tile(others[index], length // len(others[index]) + 2)
        start = int(rng.integers(0, len(voice) - length))
        piece = voice[start : start + length]
        mixture += piece / max(float(np.sqrt(np.mean(piece**2))), 1e-6)
    return mixture


def run_systems(pipelines: PipelinesByEngine, systems: dict, noisy: np.ndarray, args: argparse.Namespace) -> dict:
    """system -> a function giving (estimate, network calls); `systems`: name -> (method, setting changes,
    `backend=` among them choosing the engine)."""
    from avdiff.evaluation.baselines import noisereduce_file

    runs = {"noisy": lambda: (noisy, 0), "noisereduce": lambda: (noisereduce_file(noisy), 0)}
    for name, (method, changes) in systems.items():
        def enhance(method: str = method, changes: dict = changes) -> tuple[np.ndarray, int]:
            engine, changes = pop_engine(changes, args.backend)
            plan = {key: int(changes.pop(key)) for key in PLAN_KEYS if key in changes}
            base, settings = known_settings(method, changes)
            out = pipelines.get(engine).enhance(noisy, sample_rate=16000, method=base, seed=args.seed,
                                                steps=args.steps, options=settings, **plan)
            return out.audio, out.network_calls
        runs[name] = enhance
    return runs


def noise_kinds(names: list[str]) -> list[str]:
    """`--noises` with the set names (`noises.SETS`) spelled out, each kind once."""
    from benchmarks.common.noises import KINDS, SETS

    kinds = [kind for name in names for kind in SETS.get(name, (name,))]
    unknown = sorted(set(kinds) - {"real", "babble", *KINDS})
    if unknown:
        raise SystemExit(f"unknown noise kind(s) {', '.join(unknown)}; known: real, babble, {', '.join(SETS)}, "
                         f"{', '.join(KINDS)}")
    return list(dict.fromkeys(kinds))


def mixtures(clips, args: argparse.Namespace):
    """(noise kind, SNR, clip id, noisy, reference) of every mixture the arguments ask for."""
    from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr
    from benchmarks.common.noises import NoiseMaker

    bank = NoiseBank(find_noise_dir())
    voices = [audio for _, _, audio in held_out_clips(args.valid, 1, args.seconds)] if args.valid else []
    maker = NoiseMaker(find_noise_dir().parent, voices)
    for noise_kind in noise_kinds(args.noises):
        for snr in args.snrs:
            for number, (clip_id, speaker, clean) in enumerate(clips):
                rng = np.random.default_rng([args.seed, int(snr * 10) + 100, number, noise_kind == "babble"])
                if noise_kind in ("real", "babble"):
                    noise = bank.excerpt(len(clean), rng) if noise_kind == "real" else babble(clips, speaker, len(clean), rng)
                else:
                    noise = maker.make(noise_kind, len(clean), rng)
                yield (noise_kind, snr, clip_id, *mix_at_snr(clean, noise, snr))
    if args.clean:
        for clip_id, _, clean in clips:
            yield "clean", float("inf"), clip_id, clean, clean


def score_all(pipelines: PipelinesByEngine, clips, args: argparse.Namespace, rows: Rows) -> None:
    """Every (noise, SNR, clip, system) not yet in `rows`."""
    from avdiff.evaluation.metrics import compute_metrics

    systems = parse_variants(args.methods, args.variant)
    for noise_kind, snr, clip_id, noisy, reference in mixtures(clips, args):
        for system, run in run_systems(pipelines, systems, noisy, args).items():
            key = f"{system}|{noise_kind}|{snr:g}|{clip_id}"
            if key in rows.done:
                continue
            start = time.perf_counter()
            estimate, calls = run()
            seconds = time.perf_counter() - start
            scores = compute_metrics(reference, estimate, metrics=METRICS).values
            rows.add({"key": key, "system": system, "noise": noise_kind, "snr": snr, "item": clip_id,
                      "set": noise_set(noise_kind), "calls": calls, "seconds": seconds,
                      "audio_seconds": len(reference) / 16000, **scores})


def noise_set(kind: str) -> str:
    """Which set of `noises.SETS` a noise kind belongs to, or the older real / babble / clean rows' own name."""
    from benchmarks.common.noises import SETS

    return next((name for name, kinds in SETS.items() if kind in kinds), kind)


def paired(rows: list[dict], system: str, other: str, snr: float, metric: str) -> list[float]:
    """Per-mixture differences system - other at one SNR (all noises)."""
    index = {(r["noise"], r["item"]): r[metric] for r in rows if r["system"] == other and r["snr"] == snr}
    return [r[metric] - index[(r["noise"], r["item"])] for r in rows
            if r["system"] == system and r["snr"] == snr and (r["noise"], r["item"]) in index]


def target_summary(rows: list[dict], method: str) -> list[dict]:
    """The issue's targets as paired differences (method - baseline) per SNR: mean, CI and n per metric."""
    return [{"snr": snr, "vs": other, **{metric: mean_ci_values(paired(rows, method, other, snr, metric))
                                         for metric in METRICS}}
            for snr in sorted({r["snr"] for r in rows if r["system"] == method}) for other in BASELINES]


def targets_table(targets: list[dict]) -> str:
    """The markdown of `target_summary`."""
    lines = ["| SNR | vs | " + " | ".join(f"Δ {m}" for m in METRICS) + " |", "|" + " --- |" * (2 + len(METRICS))]
    lines += [f"| {entry['snr']:g} | {entry['vs']} | " + " | ".join(format_mean_ci(entry[m]) for m in METRICS) + " |"
              for entry in targets]
    return "\n".join(lines)


def summary_numbers(rows: list[dict], clips: list, args: argparse.Namespace) -> dict:
    """Means ± 95 % CI by noise and SNR and by SNR, the paired targets and the median real-time factor."""
    real_time = [r["seconds"] / r["audio_seconds"] for r in rows if r["system"] == args.default_method]
    return {"clips": len(clips), "speakers": len({speaker for _, speaker, _ in clips}),
            "by_noise_and_snr": grouped_summary(rows, ("noise", "snr", "system"), METRICS),
            "by_snr": grouped_summary(rows, ("snr", "system"), METRICS),
            "by_set_and_snr": grouped_summary([r for r in rows if "set" in r], ("set", "snr", "system"), METRICS),
            "paired_targets": target_summary(rows, args.default_method),
            "median_real_time": float(np.median(real_time)) if real_time else None}


def summary(numbers: dict, args: argparse.Namespace) -> str:
    """summary.md: the markdown of `summary_numbers`."""
    real_time = numbers["median_real_time"]
    sections = [
        f"{numbers['clips']} clips of {args.seconds:g} s from {numbers['speakers']} held-out speakers; model {args.model}",
        "## By noise and SNR\n\n" + summary_table(numbers["by_noise_and_snr"], ("noise", "snr", "system"), METRICS),
        "## All noises, by SNR\n\n" + summary_table(numbers["by_snr"], ("snr", "system"), METRICS),
        "## By noise set (tuning: settings were chosen there; held-out: never) and SNR\n\n"
        + summary_table(numbers["by_set_and_snr"], ("set", "snr", "system"), METRICS),
        f"## {args.default_method} minus the baselines (paired, all noises)\n\n" + targets_table(numbers["paired_targets"]),
        f"{args.default_method}: median wall-clock / audio duration in this run {real_time:.2f}" if real_time else "",
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None, pipelines: PipelinesByEngine | None = None) -> None:
    """The benchmark; `pipelines`: the model's pipeline per engine (a harness may add engines of its own)."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clips = held_out_clips(args.test, args.per_speaker, args.seconds)
    clips = clips[: args.limit] if args.limit else clips
    rows = Rows(args.output / "rows.jsonl")
    score_all(pipelines or PipelinesByEngine(args.model), clips, args, rows)
    numbers = summary_numbers(rows.rows, clips, args)
    text = summary(numbers, args)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text, end="")


if __name__ == "__main__":
    main()
