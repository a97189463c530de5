"""The VAE baselines beside the diffusion priors (issue 27): one table, the same mixtures, side by side.

Two corpora, both held out:
- `--corpus synthetic`: `lips_matter`'s clips (a corpus seed never trained on, sentences never
  trained on) with their lip videos, in real noise and babble of other test speakers; scored with
  SI-SDR, PESQ-WB, ESTOI and the GRID-grammar WER;
- `--corpus real`: `enhance_real`'s clips (real read speech of held-out speakers), audio only;
  SI-SDR, PESQ-WB, ESTOI.
Systems: the noisy input, noisereduce, and every `--system NAME=MODEL:METHOD[:video]` (a model
folder or shipped name, a method of its family or `default` for the folder's own, `video` to give
it the lips). Each row records
the wall time, so the table carries the real-time factor (on however many threads `--threads`
gives, stated in the record), and the summary lists each model's parameters. Rows go to
OUTPUT/rows.jsonl as they come (a killed run resumes); OUTPUT/summary.md has the table (95 %
intervals) and the paired differences against `--reference` (default: the first system).

    .venv/bin/python -m benchmarks.quality.vae_baselines --corpus synthetic \
        --test data/synth-v2s-test/manifest.jsonl --train data/synth-v2s-32spk/train.jsonl data/synth-v2s/train.jsonl \
        --clips 8 --snrs -5 0 5 --threads 2 --output benchmarks/results/vae-baselines-synthetic \
        --system "VAE (AO)=models/av-vae:vae-mcem" --system "AV-VAE=models/av-vae:vae-mcem:video" \
        --system "switching VAE=models/av-vae:switching-vae:video" \
        --system "diffusion (AO)=v2s:udiffse+" --system "diffusion (AV)=v2s:udiffse+lips:video"
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.record import record
from benchmarks.common.rows import Rows, format_mean_ci, grouped_summary, mean_ci_values, summary_table
from benchmarks.quality.lips_matter import agreement_argument

SIGNAL_METRICS = ("si_sdr", "pesq_wb", "estoi")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=("synthetic", "real"), required=True)
    parser.add_argument("--test", type=Path, nargs="+", required=True,
                        help="synthetic: the held-out corpus's manifest; real: the test manifests of avdiff split")
    parser.add_argument("--train", type=Path, nargs="*", default=[], help="synthetic: training manifests (sentences to exclude)")
    parser.add_argument("--clips", type=int, default=8, help="synthetic: held-out clips (new sentences)")
    parser.add_argument("--skip-clips", type=int, default=0, help="synthetic: new-sentence clips passed over first")
    parser.add_argument("--per-speaker", type=int, default=1, help="real: utterances per held-out speaker")
    parser.add_argument("--seconds", type=float, default=4.0, help="real: clip length")
    parser.add_argument("--limit", type=int, default=None, help="real: only the first N clips")
    parser.add_argument("--system", action="append", default=[], metavar="NAME=MODEL:METHOD[:video]")
    parser.add_argument("--reference", default=None, help="the system the paired differences are taken against")
    parser.add_argument("--snrs", type=float, nargs="+", default=[-5.0, 0.0, 5.0])
    parser.add_argument("--noises", nargs="+", choices=("real", "babble"), default=["real", "babble"])
    parser.add_argument("--lip-agreement", action=argparse.BooleanOptionalAction, default=None,
                        help="weigh the lips by their agreement with the sound (default: avdiff's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def parse_system(spec: str) -> tuple[str, str, str, bool]:
    """NAME=MODEL:METHOD[:video] -> (name, model, method, with video)."""
    name, _, rest = spec.partition("=")
    parts = rest.split(":")
    if not name or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "video"):
        raise SystemExit(f"--system {spec!r}: expected NAME=MODEL:METHOD[:video]")
    return name, parts[0], parts[1], len(parts) == 3


def mixtures(args: argparse.Namespace) -> Iterator[tuple[str, float, str, np.ndarray, np.ndarray, object, str | None]]:
    """(noise kind, SNR, clip id, noisy, reference, video or None, GRID text or None) of every mixture."""
    if args.corpus == "synthetic":
        from benchmarks.quality.lips_matter import enhancement_mixtures, new_sentence_items

        one_test = argparse.Namespace(**{**vars(args), "test": args.test[0]})  # lips_matter's one manifest
        items = new_sentence_items(one_test.test, args.train, args.skip_clips + args.clips)[args.skip_clips:]
        for noise, snr, item, _, video, noisy, reference in enhancement_mixtures(items, one_test):
            yield noise, snr, item["id"], noisy, reference, video, item["text"]
        return
    from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr
    from benchmarks.quality.enhance_real import babble, held_out_clips

    clips = held_out_clips(args.test, args.per_speaker, args.seconds)[: args.limit]
    bank = NoiseBank(find_noise_dir())
    for noise in args.noises:
        for snr in args.snrs:
            for number, (clip_id, speaker, clean) in enumerate(clips):
                rng = np.random.default_rng([args.seed, int(snr * 10) + 100, number, noise == "babble"])
                noisy, reference = mix_at_snr(clean, bank.excerpt(len(clean), rng) if noise == "real"
                                              else babble(clips, speaker, len(clean), rng), snr)
                yield noise, snr, clip_id, noisy, reference, None, None


class Systems:
    """The systems of the table: name -> a function of (noisy, video) giving (estimate, network calls)."""

    def __init__(self, specs: list[str], seed: int, agreement: dict | None = None) -> None:
        from avdiff.pipeline.loading import load_pipeline

        self.seed, self.pipelines, self.parameters = seed, {}, {}
        self.agreement = agreement or {}  # `lip_agreement=` when the run names it
        self.specs = [parse_system(spec) for spec in specs]
        for name, model, method, _ in self.specs:
            if model not in self.pipelines:
                self.pipelines[model] = load_pipeline(model)
            pipe = self.pipelines[model]
            network = getattr(pipe, "vae", None) or pipe.components.score_model
            self.parameters[name] = sum(p.numel() for p in network.parameters())
            pipe.enhancement_plan(None if method == "default" else method)  # another family's method stops here

    def runs(self, noisy: np.ndarray, video: object) -> dict[str, Callable[[], tuple[np.ndarray, int]]]:
        from avdiff.evaluation.baselines import noisereduce_file

        runs = {"noisy": lambda: (noisy, 0), "noisereduce": lambda: (noisereduce_file(noisy), 0)}
        for name, model, method, with_video in self.specs:
            def run(model: str = model, method: str = method, with_video: bool = with_video) -> tuple[np.ndarray, int]:
                out = self.pipelines[model].enhance(noisy, sample_rate=16000, video=video if with_video else None,
                                                    method=None if method == "default" else method, seed=self.seed,
                                                    **self.agreement)
                return out.audio, out.network_calls
            runs[name] = run
        return runs


def score_all(systems: Systems, args: argparse.Namespace, rows: Rows) -> None:
    """Every (noise, SNR, clip, system) not yet in `rows`."""
    from avdiff.evaluation.metrics import compute_metrics

    scorer = None
    for noise, snr, clip_id, noisy, reference, video, text in mixtures(args):
        for system, run in systems.runs(noisy, video).items():
            key = f"{system}|{noise}|{snr:g}|{clip_id}"
            if key in rows.done:
                continue
            start = time.perf_counter()
            estimate, calls = run()
            seconds = time.perf_counter() - start
            if text is not None:
                from benchmarks.quality.lips_matter import Scorer

                scorer = scorer or Scorer(None)
                scores = {k: v for k, v in scorer(reference, estimate, text, (*SIGNAL_METRICS, "wer_grid")).items()
                          if k in (*SIGNAL_METRICS, "wer_grid")}
            else:
                scores = compute_metrics(reference, estimate, metrics=SIGNAL_METRICS).values
            rows.add({"key": key, "system": system, "noise": noise, "snr": snr, "item": clip_id, "calls": calls,
                      "seconds": seconds, "rtf": seconds / (len(noisy) / 16000), **scores})
            print(f"{key}: SI-SDR {scores['si_sdr']:.2f} dB, {seconds:.1f} s", flush=True)


def paired_differences(rows: list[dict], reference: str, metrics: tuple[str, ...]) -> list[dict]:
    """Per (noise, SNR, system): mean and 95 % CI of system - reference on the same mixtures."""
    out = []
    for noise in sorted({r["noise"] for r in rows}):
        for snr in sorted({r["snr"] for r in rows}):
            base = {r["item"]: r for r in rows if r["system"] == reference and r["noise"] == noise and r["snr"] == snr}
            for system in sorted({r["system"] for r in rows} - {reference}):
                these = [r for r in rows if r["system"] == system and r["noise"] == noise and r["snr"] == snr
                         and r["item"] in base]
                out.append({"noise": noise, "snr": snr, "system": system,
                            **{m: mean_ci_values([r[m] - base[r["item"]][m] for r in these if m in r])
                               for m in metrics}})
    return out


def summary(rows: list[dict], systems: Systems, args: argparse.Namespace) -> tuple[str, dict]:
    metrics = SIGNAL_METRICS + (("wer_grid",) if args.corpus == "synthetic" else ())
    table = grouped_summary(rows, ("noise", "snr", "system"), (*metrics, "rtf"))
    reference = args.reference or systems.specs[0][0]
    differences = paired_differences(rows, reference, metrics)
    overall = grouped_summary([{**r, "all": "all"} for r in rows], ("system",), (*metrics, "rtf"))
    lines = ["| system | parameters |", "| --- | --- |"]
    lines += [f"| {name} | {systems.parameters[name] / 1e6:.2f} M |" for name, *_ in systems.specs]
    diff_lines = ["| noise | SNR | system | " + " | ".join(f"Δ {m}" for m in metrics) + " |", "|" + " --- |" * (3 + len(metrics))]
    diff_lines += [f"| {d['noise']} | {d['snr']:g} | {d['system']} | " + " | ".join(format_mean_ci(d[m]) for m in metrics)
                   + " |" for d in differences]
    text = "\n\n".join([
        f"Corpus {args.corpus} ({', '.join(map(str, args.test))}), held out; SNRs {args.snrs}; mean ± 95 % CI; "
        f"RTF on {args.threads or torch.get_num_threads()} thread(s).",
        "\n".join(lines), "## All mixtures", summary_table(overall, ("system",)),
        "## Per noise and SNR", summary_table(table, ("noise", "snr", "system")),
        f"## Paired differences against {reference}", "\n".join(diff_lines)])
    return text + "\n", {"overall": overall, "table": table, "differences": differences,
                         "parameters": systems.parameters, "reference": reference}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    systems = Systems(args.system, args.seed, agreement_argument(args))
    rows = Rows(args.output / "rows.jsonl")
    print(f"rows so far: {len(rows.rows)}", flush=True)
    score_all(systems, args, rows)
    text, numbers = summary(rows.rows, systems, args)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
