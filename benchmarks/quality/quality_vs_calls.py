"""Quality against network calls: every sampler at 4 to 60 calls, with the shipped models.

- generate: video-to-speech by the `--v2s-model` on held-out clips of a synthetic corpus made
  with an unseen seed, minus every training sentence (as `lips_matter.py`); GRID-grammar WER and
  ESTOI against the clean reference. Systems: `--samplers` (registry names, `name:key=value`
  for options), each at every `--calls` budget it can meet (predictor-corrector spends 2 calls
  per level, Heun 2 per level - 1: the largest level count within the budget is used).
- enhance: the `--prior-model` on real speech of held-out speakers in real noise at `--snrs`
  (as `enhance_real.py`); SI-SDR, PESQ-WB, ESTOI. Systems: `--enhancers`
  (`method[:option=value,...]`, the method's registered options) at every budget (1 call per level).
Rows go to OUTPUT/rows.jsonl as they come (a killed run resumes); OUTPUT/summary.md has the
tables (mean ± 95 % interval), OUTPUT/record.json the same numbers with the run's provenance, and
OUTPUT/quality_vs_calls.png the curves (a copy is benchmarks/figures/quality_vs_calls.png).

    .venv/bin/python -m benchmarks.quality.quality_vs_calls --v2s-test data/synth-v2s-test/manifest.jsonl \
        --v2s-train data/synth-v2s/train.jsonl \
        --speech-test data/speech/librispeech/test.jsonl data/speech/speechocean762/test.jsonl \
        --output benchmarks/results/quality-vs-calls
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.engines import PipelinesByEngine, pop_engine
from benchmarks.common.record import record
from benchmarks.common.rows import Rows, format_mean_ci, grouped_summary, mean_ci_values, summary_table
from benchmarks.common.run_specs import parse_run_spec
from benchmarks.quality.diffusion_settings import known_settings
from benchmarks.quality.enhance_real import held_out_clips
from benchmarks.quality.lips_matter import Scorer, clip_inputs, new_sentence_items, timed

GENERATE_METRICS = ("wer_grid", "estoi")
ENHANCE_METRICS = ("si_sdr", "pesq_wb", "estoi")
CALL_BUDGETS = (4, 6, 8, 12, 16, 30, 60)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=list(CALL_BUDGETS), help="network-call budgets")
    parser.add_argument("--parts", nargs="*", choices=("generate", "enhance"), default=["generate", "enhance"],
                        help="parts to run (none: only rewrite summary.md and the plot from the rows)")
    parser.add_argument("--v2s-model", default="v2s", help="video-to-speech model folder or shipped name")
    parser.add_argument("--v2s-test", type=Path, help="manifest of the held-out synthetic corpus")
    parser.add_argument("--v2s-train", type=Path, nargs="+", default=[], help="training manifests: sentences to exclude")
    parser.add_argument("--clips", type=int, default=12, help="video-to-speech test clips")
    parser.add_argument("--samplers", nargs="+", default=["predictor_corrector", "heun", "dpmpp_2m", "dpmpp_2m:eta=1"])
    parser.add_argument("--prior-model", default="speech-prior", help="enhancement model folder or shipped name")
    parser.add_argument("--speech-test", type=Path, nargs="+", default=[], help="test manifests of held-out speakers")
    parser.add_argument("--speech-clips", type=int, default=12, help="enhancement test clips")
    parser.add_argument("--seconds", type=float, default=3.0, help="enhancement clip length")
    parser.add_argument("--snrs", type=float, nargs="+", default=[0.0])
    parser.add_argument("--enhancers", nargs="+", default=["udiffse+", "diffpir", "diffpir:start_sigma=none"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="the score network's dtype (autocast; the pipeline's scalings stay float32)")
    parser.add_argument("--backend", default="torch", help="the score network's engine for systems whose spec does "
                        "not say (backend=NAME among a system's options; default: %(default)s)")
    parser.add_argument("--reference", type=reference_spec, default={"generate": "predictor_corrector@60",
                        "enhance": "udiffse+:nmf_pass_updates=none,nmf_refit_below=3@60"}, metavar="PART=SYSTEM@CALLS;...",
                        help="systems the paired tables compare with (default: the previous defaults)")
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="run only clips I, I+N, I+2N, ... (N processes share a run; rows are resumable)")
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def reference_spec(text: str) -> dict[str, str]:
    """'generate=predictor_corrector@60,enhance=udiffse+@30' -> {part: 'SYSTEM@CALLS'}."""
    return dict(pair.split("=", 1) for pair in text.split(";"))


def shard(items: list, spec: str) -> list:
    """Items I, I+N, ... of `items` for the shard 'I/N'."""
    index, count = (int(part) for part in spec.split("/"))
    return items[index::count]


def levels_for(sampler: str, options: dict, calls: int) -> int:
    """The most noise levels whose run spends at most `calls` network calls (0: impossible)."""
    from avdiff.config.schema import SamplerConfig
    from avdiff.diffusion.samplers import network_calls_per_run

    steps = 0
    while network_calls_per_run(SamplerConfig(name=sampler, steps=steps + 1, options=options)) <= calls:
        steps += 1
    return steps


def score_generation(args: argparse.Namespace, rows: Rows) -> None:
    """Video-to-speech rows of every (sampler, budget, clip) not yet in `rows`."""
    pipelines = PipelinesByEngine(args.v2s_model, getattr(torch, args.dtype))
    scorer = Scorer(None)
    for item in shard(new_sentence_items(args.v2s_test, args.v2s_train, args.clips), args.shard):
        clean, video = clip_inputs(args.v2s_test, item)
        for spec in args.samplers:
            sampler, options = parse_run_spec(spec)
            engine, options = pop_engine(options, args.backend)
            pipeline = pipelines.get(engine)
            for budget in args.calls:
                steps = levels_for(sampler, options, budget)
                key = f"generate|{spec}|{budget}|{item['id']}"
                if steps < 1 or key in rows.done:
                    continue
                audio, calls, seconds = timed(lambda: _generate(pipeline, video, sampler, steps, options, args.seed))
                audio = audio[: len(clean)]
                scores = scorer(clean[: len(audio)], audio, item["text"], GENERATE_METRICS)
                rows.add({"key": key, "part": "generate", "system": spec, "budget": budget, "calls": calls,
                          "item": item["id"], "seconds": seconds, **scores})


def _generate(pipeline, video, sampler: str, steps: int, options: dict, seed: int) -> tuple[np.ndarray, int]:
    out = pipeline.generate(video, sampler=sampler, steps=steps, sampler_options=options, seed=seed)
    return out.audio[0], out.network_calls


def score_enhancement(args: argparse.Namespace, rows: Rows) -> None:
    """Enhancement rows of every (SNR, clip, method, budget) not yet in `rows`."""
    from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr
    from avdiff.evaluation.metrics import compute_metrics
    pipelines = PipelinesByEngine(args.prior_model, getattr(torch, args.dtype))
    clips = held_out_clips(args.speech_test, 1, args.seconds)[: args.speech_clips]
    bank = NoiseBank(find_noise_dir())
    for snr in args.snrs:
        for number, (clip_id, _, clean) in shard(list(enumerate(clips)), args.shard):
            rng = np.random.default_rng([args.seed, int(snr * 10) + 100, number])
            noisy, reference = mix_at_snr(clean, bank.excerpt(len(clean), rng), snr)
            for spec in ["noisy", *args.enhancers]:
                method, changes = parse_run_spec(spec)
                engine, changes = pop_engine(changes, args.backend)
                pipeline = pipelines.get(engine)
                for budget in [0] if spec == "noisy" else args.calls:
                    key = f"enhance|{spec}|{budget}|{snr:g}|{clip_id}"
                    if key in rows.done:
                        continue
                    if spec == "noisy":
                        estimate, calls, seconds = noisy, 0, 0.0
                    else:
                        resolved = known_settings(method, {**changes, "steps": budget})
                        if resolved is None:
                            raise SystemExit(f"{spec}: unknown enhancement method {method!r}")
                        base, settings = resolved
                        estimate, calls, seconds = timed(lambda: _enhance(pipeline, noisy, base, settings, args.seed))
                    scores = compute_metrics(reference, estimate, metrics=ENHANCE_METRICS).values
                    rows.add({"key": key, "part": "enhance", "system": spec, "budget": budget, "calls": calls,
                              "snr": snr, "item": clip_id, "seconds": seconds, **scores})


def _enhance(pipeline, noisy: np.ndarray, method: str, settings, seed: int) -> tuple[np.ndarray, int]:
    out = pipeline.enhance(noisy, sample_rate=16000, method=method, options=settings, seed=seed)
    return out.audio, out.network_calls


def common_items(rows: list[dict]) -> list[dict]:
    """The rows of clips that every (system, budget) of `rows` ran (a run extended to more clips
    for a few systems stays comparable)."""
    runs: dict[tuple, set] = {}
    for r in rows:
        runs.setdefault((r["system"], r["budget"]), set()).add(r["item"])
    shared = set.intersection(*runs.values()) if runs else set()
    return [r for r in rows if r["item"] in shared]


def paired_summary(rows: list[dict], reference: str, metrics: tuple[str, ...]) -> list[dict]:
    """Per (system, budget): mean, CI and n of (system - reference) per metric over the clips both ran;
    reference 'SYSTEM@BUDGET'."""
    ref_system, ref_budget = reference.rsplit("@", 1)
    base = {r["item"]: r for r in rows if r["system"] == ref_system and r["budget"] == int(ref_budget)}
    summary = []
    for system, budget in sorted({(r["system"], r["budget"]) for r in rows}, key=lambda k: (k[0], k[1])):
        pairs = [(r, base[r["item"]]) for r in rows if r["system"] == system and r["budget"] == budget
                 and r["item"] in base]
        summary.append({"system": system, "budget": budget, "n": len(pairs),
                        **{m: mean_ci_values([a[m] - b[m] for a, b in pairs]) for m in metrics}})
    return summary


def paired_table(summary: list[dict], metrics: tuple[str, ...]) -> str:
    """The markdown of a `paired_summary`: Δ per metric (mean ± 95 % CI) and the number of pairs."""
    lines = ["| system | budget | " + " | ".join(f"Δ {m}" for m in metrics) + " | n |",
             "|" + " --- |" * (len(metrics) + 3)]
    for entry in summary:
        cells = [format_mean_ci(entry[m]) for m in metrics]
        lines.append(f"| {entry['system']} | {entry['budget']} | " + " | ".join(cells) + f" | {entry['n']} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """One panel per (part, metric): mean against network calls, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(part, metric) for part, metrics in (("generate", GENERATE_METRICS), ("enhance", ENHANCE_METRICS))
              for metric in metrics if any(r["part"] == part for r in rows)]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for axis, (part, metric) in zip(axes[0], panels):
        subset = [r for r in rows if r["part"] == part and metric in r]
        for system in sorted({r["system"] for r in subset}):
            budgets = sorted({r["budget"] for r in subset if r["system"] == system})
            means = [np.nanmean([r[metric] for r in subset if r["system"] == system and r["budget"] == b])
                     for b in budgets]
            if system == "noisy":
                axis.axhline(means[0], color="grey", linestyle=":", label="noisy")
            else:
                axis.plot(budgets, means, marker="o", label=system)
        axis.set_xscale("log")
        axis.set_xticks(sorted({r["budget"] for r in subset if r["budget"]}), minor=False)
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("network calls")
        axis.set_title(f"{part}: {metric}")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def summaries(rows: list[dict], references: dict[str, str]) -> tuple[list[str], dict, list[dict]]:
    """summary.md's sections, the same numbers for record.json, and the rows every system ran (the plot's)."""
    sections, numbers, common = [], {}, []
    for part, metrics in (("generate", GENERATE_METRICS), ("enhance", ENHANCE_METRICS)):
        subset = common_items([r for r in rows if r["part"] == part])
        common += subset
        if subset:
            clips = len({r["item"] for r in subset})
            numbers[part] = {"clips": clips, "table": grouped_summary(subset, ("system", "budget"), metrics)}
            sections.append(f"## {part} ({clips} clips every system ran)\n\n"
                            + summary_table(numbers[part]["table"], ("system", "budget"), metrics))
        reference = references.get(part)
        if reference:
            part_rows = [r for r in rows if r["part"] == part]
            numbers[f"{part}_paired"] = {"reference": reference, "table": paired_summary(part_rows, reference, metrics)}
            sections.append(f"## {part}: paired differences from {reference} (every clip both ran)\n\n"
                            + paired_table(numbers[f"{part}_paired"]["table"], metrics))
    return sections, numbers, common


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = Rows(args.output / "rows.jsonl")
    if "generate" in args.parts:
        score_generation(args, rows)
    if "enhance" in args.parts:
        score_enhancement(args, rows)
    sections, numbers, common = summaries(rows.rows, args.reference)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "summary.md").write_text("\n\n".join(sections) + "\n")
    record(args.output, args, numbers)
    plot(common, args.output / "quality_vs_calls.png")
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
