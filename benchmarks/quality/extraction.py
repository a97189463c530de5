"""Target-speaker extraction on held-out synthetic two-talker mixtures (`avdiff extract`, issue 25).

Each mixture is a held-out clip (corpus seed and sentence never trained on: `lips_matter`'s
items) plus another held-out speaker's clip at `--talker-snr` dB (tiled or cut to length, from a
random offset) plus a real noise at `--noise-snr` dB below the target. Systems, scored against
the target: the mixture itself, noisereduce, audio-visual enhancement with the target's lips
(the model's default method: it does not know that the noise is a talker), extraction with the
target's lips, and extraction with the target's face masked (the control: no lips, so which
talker comes out is a coin toss); `--with-interferer-video` adds extraction given both videos.
Per row: SI-SDR against the target and against the interferer (the talker chosen is the one the
estimate is closer to), their improvement over the mixture, ESTOI, PESQ-WB, the GRID-grammar
WER, the seconds and the real-time factor. The clean target's own WER is a row too ("clean").
Rows go to OUTPUT/rows.jsonl as they come (a killed run resumes); OUTPUT/summary.md and
OUTPUT/record.json hold the tables with 95 % intervals and the paired differences.

    .venv/bin/python -m benchmarks.quality.extraction --test data/synth-v2s-test/manifest.jsonl \
        --train data/synth-v2s/train.jsonl --clips 12 --output benchmarks/results/extraction
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from benchmarks.common.record import record
from benchmarks.common.run_specs import parse_options
from benchmarks.common.rows import Rows, format_mean_ci, grouped_summary, mean_ci_values, summary_table
from benchmarks.quality.lips_matter import Scorer, clip_inputs, held_out_setup, paired, timed

if TYPE_CHECKING:
    from avdiff.pipeline.inputs import MouthVideo
    from benchmarks.quality.lips_matter import agreement_argument

METRICS = ("si_sdr", "si_sdr_i", "si_sdr_interferer", "chose_target", "pesq_wb", "estoi", "wer_grid", "rtf")
SYSTEMS = ("mixture", "noisereduce", "enhance, lips", "extract, lips", "extract, masked")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s", help="model folder or shipped model name")
    parser.add_argument("--test", type=Path, required=True, help="manifest of the held-out synthetic corpus")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifest(s): sentences to exclude")
    parser.add_argument("--clips", type=int, default=12, help="target clips (the first N new sentences)")
    parser.add_argument("--skip-clips", type=int, default=0, help="new-sentence clips passed over first (tuning clips)")
    parser.add_argument("--talker-snr", type=float, default=0.0, help="target-to-interferer ratio in dB")
    parser.add_argument("--noise-snr", type=float, default=10.0, help="target-to-noise ratio in dB (real noise)")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--with-interferer-video", action="store_true", help="also extract given both talkers' videos")
    parser.add_argument("--steps", type=int, default=None, help="levels of the joint pass (default: its own)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance of the target's lips (default: extraction's)")
    parser.add_argument("--options", nargs="*", default=[], metavar="KEY=VALUE", help="extraction options (YAML values)")
    parser.add_argument("--lip-agreement", action=argparse.BooleanOptionalAction, default=None,
                        help="trust the lips only where they agree with the sound (default: avdiff's)")
    parser.add_argument("--label", default="", help="appended to the extraction systems' names (a settings sweep)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def mixtures(items: list[dict], args: argparse.Namespace) -> Iterator[tuple]:
    """(item, target as mixed, interferer as mixed, mixture, target video, interferer video) per target
    clip; the interferer is the next clip of another speaker, seeded per mixture."""
    from avdiff.demo.mixing import NoiseBank, find_noise_dir

    bank = NoiseBank(find_noise_dir())
    inputs = [clip_inputs(args.test, item) for item in items]
    for number, (item, (clean, video)) in enumerate(zip(items, inputs)):
        rng = np.random.default_rng([args.seed, number, 25])
        other = next(k % len(items) for k in range(number + 1, number + len(items))
                     if items[k % len(items)]["speaker"] != item["speaker"])
        interferer, other_video = _excerpt(inputs[other][0], inputs[other][1], len(clean), rng)
        noise = bank.excerpt(len(clean), rng)
        power = float(np.mean(clean**2))
        interferer = interferer * np.sqrt(power / (np.mean(interferer**2) * 10 ** (args.talker_snr / 10)))
        noise = noise * np.sqrt(power / (max(float(np.mean(noise**2)), 1e-12) * 10 ** (args.noise_snr / 10)))
        mixture = clean + interferer + noise
        scale = 0.9 / max(float(np.abs(mixture).max()), 1e-9)
        yield (item, (clean * scale).astype(np.float32), (interferer * scale).astype(np.float32),
               (mixture * scale).astype(np.float32), video, other_video)


def _excerpt(audio: np.ndarray, video, length: int, rng: np.random.Generator) -> tuple[np.ndarray, "MouthVideo"]:
    """`length` samples of the clip repeated, from a random offset, and its video from the same
    offset to the nearest frame before it (at most 40 ms early)."""
    from avdiff.pipeline.inputs import MouthVideo
    from benchmarks.quality.lips_matter import agreement_argument
    from avdiff.timegrid import SAMPLES_PER_FRAME

    tiled = np.tile(audio, length // len(audio) + 2)
    start = int(rng.integers(0, len(tiled) - length))
    frames = -(-length // SAMPLES_PER_FRAME)
    first = start // SAMPLES_PER_FRAME
    index = np.arange(first, first + frames) % video.num_frames  # the clip's audio is num_frames * 640 samples
    return tiled[start : start + length], MouthVideo(video.rois[index], video.face_ok[index])


def systems(pipeline, mixture: np.ndarray, video, other_video, args: argparse.Namespace) -> dict[str, Callable]:
    """system name -> a function giving (estimate, network calls)."""
    from avdiff.evaluation.baselines import noisereduce_file
    from avdiff.pipeline.extraction import extract, extraction_plan
    from avdiff.pipeline.inputs import MouthVideo
    from benchmarks.quality.lips_matter import agreement_argument

    options = parse_options(args.options)
    plan = extraction_plan(pipeline, steps=args.steps, guidance_scale=args.guidance, options=options)
    masked = MouthVideo(video.rois, np.zeros_like(video.face_ok))
    agreement = agreement_argument(args)

    def run_extract(target_video, interferer_video=None) -> tuple[np.ndarray, int]:
        out = extract(pipeline, mixture, target_video, sample_rate=16000, interferer_video=interferer_video,
                      plan=plan, seed=args.seed, require_face=False, **agreement)
        return out.target, out.network_calls

    def run_enhance() -> tuple[np.ndarray, int]:
        out = pipeline.enhance(mixture, sample_rate=16000, video=video, seed=args.seed, **agreement)
        return out.audio, out.network_calls

    runs = {"mixture": lambda: (mixture, 0), "noisereduce": lambda: (noisereduce_file(mixture), 0),
            "enhance, lips": run_enhance, "extract, lips": lambda: run_extract(video),
            "extract, masked": lambda: run_extract(masked)}
    chosen = {name + (args.label if name.startswith("extract") else ""): runs[name] for name in args.systems}
    if args.with_interferer_video:
        chosen["extract, both videos" + args.label] = lambda: run_extract(video, other_video)
    return chosen


def score(scorer: Scorer, target: np.ndarray, interferer: np.ndarray, mixture: np.ndarray, estimate: np.ndarray,
          text: str) -> dict:
    """The estimate's scores against the target, and its SI-SDR against the interferer."""
    from avdiff.evaluation.metrics import si_sdr

    scores = scorer(target, estimate, text, ("si_sdr", "pesq_wb", "estoi"))
    scores["si_sdr_interferer"] = float(si_sdr(interferer, estimate))
    scores["si_sdr_i"] = scores["si_sdr"] - float(si_sdr(target, mixture))
    scores["chose_target"] = float(scores["si_sdr"] > scores["si_sdr_interferer"])
    return scores


def score_all(pipeline, items: list[dict], args: argparse.Namespace, scorer: Scorer, rows: Rows) -> None:
    for item, target, interferer, mixture, video, other_video in mixtures(items, args):
        seconds_of_audio = len(mixture) / 16000
        key = f"clean|{item['id']}"
        if key not in rows.done:
            rows.add({"key": key, "system": "clean", "item": item["id"], **scorer(target, target, item["text"], ())})
        for system, run in systems(pipeline, mixture, video, other_video, args).items():
            key = f"{system}|{item['id']}"
            if key in rows.done:
                continue
            estimate, calls, seconds = timed(run)
            rows.add({"key": key, "system": system, "item": item["id"], "calls": calls, "seconds": seconds,
                      "rtf": seconds / seconds_of_audio, **score(scorer, target, interferer, mixture, estimate, item["text"])})
            print(f"{key}: SI-SDR {rows.rows[-1]['si_sdr']:.2f} dB, chose target {rows.rows[-1]['chose_target']:.0f}",
                  flush=True)


def summary_numbers(rows: list[dict]) -> dict:
    scored = [row for row in rows if row["system"] != "clean"]
    extractors = sorted({row["system"] for row in scored if row["system"].startswith("extract")})
    return {
        "systems": grouped_summary(scored, ("system",), METRICS),
        "clean_wer_grid": mean_ci_values([row["wer_grid"] for row in rows if row["system"] == "clean"]),
        "paired": [{"system": system, "against": other, **{m: mean_ci_values(paired(scored, system, other, m, {}))
                                                           for m in ("si_sdr", "estoi", "wer_grid")}}
                   for system in extractors for other in ("enhance, lips", "extract, masked") if other != system],
    }


def summary(numbers: dict, args: argparse.Namespace) -> str:
    lines = ["| system | against | Δ si_sdr | Δ estoi | Δ wer_grid |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {e['system']} | {e['against']} | " + " | ".join(format_mean_ci(e[m]) for m in ("si_sdr", "estoi", "wer_grid"))
              + " |" for e in numbers["paired"] if e["si_sdr"]["n"]]
    return "\n\n".join([
        f"Model {args.model}; {args.test} (sentences never trained on); two talkers at {args.talker_snr:g} dB, real "
        f"noise at {args.noise_snr:g} dB; mean ± 95 % CI.",
        summary_table(numbers["systems"], ("system",), METRICS),
        f"Clean target, GRID-grammar WER: {format_mean_ci(numbers['clean_wer_grid'])}",
        "Paired differences:", "\n".join(lines)]) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    items, pipeline = held_out_setup(args)
    scorer, rows = Scorer(None), Rows(args.output / "rows.jsonl")
    print(f"{len(items)} held-out target clips; rows so far: {len(rows.rows)}", flush=True)
    score_all(pipeline, items, args, scorer, rows)
    numbers = summary_numbers(rows.rows)
    text = summary(numbers, args)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
