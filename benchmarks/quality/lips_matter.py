"""Do the lips matter? Video-to-speech and audio-visual enhancement on held-out synthetic speech.

Test clips: a synthetic corpus made with a seed the model never trained on (`avdiff synth
--seed 101`: other speakers' prosody and faces), minus every sentence of the training manifest,
so both the sentences and the corpus seed are new. Each clip is scored against its clean
reference:
- video-to-speech: from the lips at each `--guidance` w, and with every face masked (the same
  model as an unconditional prior: the lips must beat it); `--oracle-envelope W` also puts the
  clean speech's own log-mel envelope in place of the lips' (an upper bound for the lips' part),
  and `--level-swap` (with it) two hybrids that tell the voice from the articulation: the lips'
  envelope moved to the true envelope's mean level per band over the clip, and the true envelope's
  movements at the lips' level; `--error-split` (with it) how much of the lips' error costs the
  words: the true envelope plus the lips' error scaled by 1/2 and 1/4, plus only its slow part
  (`avdiff.audio.envelope.slow_part`: a moving mean over 200 ms) and plus only its fast part (the rest).
  ESTOI, and WER and per-slot accuracy
  of the closed-set GRID-grammar recogniser (pocketsphinx JSGF); `--whisper DIR` adds the open
  recogniser's WER.
- enhancement at `--snrs` in the real noises and in babble (four other test clips of other
  speakers): the noisy input, noisereduce, the model audio-only, the model audio-visual;
  SI-SDR, PESQ-WB, ESTOI and the GRID-grammar WER (babble made as in `enhance_real.py`).
Rows go to OUTPUT/rows.jsonl as they come (a killed run resumes); OUTPUT/summary.md has the
tables with 95 % intervals and the paired differences that the issue's targets are about, and
OUTPUT/record.json the same numbers with the run's provenance.

    .venv/bin/python -m benchmarks.quality.lips_matter --model v2s --test data/synth-v2s-test/manifest.jsonl \
        --train data/synth-v2s/train.jsonl --clips 40 --output benchmarks/results/lips-matter
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from avdiff.evaluation.recognisers import SLOT_KEYS
from benchmarks.common.record import record
from benchmarks.common.run_specs import parse_options
from benchmarks.common.rows import Rows, format_mean_ci, grouped_summary, mean_ci_values, summary_table
from benchmarks.quality.enhance_real import babble

if TYPE_CHECKING:
    from avdiff.pipeline.inputs import MouthVideo
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

V2S_METRICS = ("wer_grid", "estoi", *SLOT_KEYS, "hnr_db", "hnr_db_reference", "pitch_agreement", "wer_whisper")
ENHANCE_METRICS = ("si_sdr", "pesq_wb", "estoi", "wer_grid")
ENHANCE_SYSTEMS = ("noisy", "noisereduce", "audio-only", "audio-visual")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="v2s", help="model folder or shipped model name")
    parser.add_argument("--test", type=Path, required=True, help="manifest of the held-out synthetic corpus")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="training manifest(s): sentences to exclude")
    parser.add_argument("--clips", type=int, default=40, help="test clips (the first N new sentences)")
    parser.add_argument("--skip-clips", type=int, default=0,
                        help="new-sentence clips passed over first (those a setting was tuned on)")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0], help="guidance weights of 'lips'")
    parser.add_argument("--steps", type=int, default=None, help="sampler levels (default: the model's)")
    parser.add_argument("--guidance-min-sigma", type=float, default=None, metavar="S",
                        help="guidance of 'lips' only at noise levels >= S sigma_data (default: the model's)")
    parser.add_argument("--generate-start", choices=("noise", "rendition"), default=None,
                        help="where video-to-speech sampling starts (default: the model's sampler.start)")
    parser.add_argument("--generate-start-sigma", type=float, default=None, metavar="S",
                        help="a rendition start's noise level in sigma_data (default: the model's)")
    parser.add_argument("--pitch", type=float, default=None, metavar="HZ",
                        help="a rendition start's pitch (default: the model's sampler.pitch_hz)")
    parser.add_argument("--envelope-encoder", type=Path, default=None, metavar="DIR",
                        help="a lip encoder folder (benchmarks/quality/envelope_probe.py's OUTPUT/lip_encoder) whose "
                        "envelope replaces the lips' at the first --guidance: a separately trained "
                        "lip-to-envelope model in front of the same score network")
    parser.add_argument("--oracle-envelope", type=float, default=None, metavar="W",
                        help="also generate with the true speech envelope in place of the lips' (guidance W): "
                        "a diagnostic of what the score network makes of a perfect envelope")
    parser.add_argument("--phone-templates", type=Path, default=None, metavar="MANIFEST",
                        help="with --oracle-envelope: also envelopes made of per-phoneme templates learned on this "
                        "training manifest (benchmarks/common/phone_templates.py), of the true phonemes and, with "
                        "--phone-head, of the lips' phone posterior")
    parser.add_argument("--template-clips", type=int, default=300, help="training clips the templates average")
    parser.add_argument("--phone-head", type=Path, default=None, metavar="SAFETENSORS",
                        help="a training checkpoint's model.safetensors / ema.safetensors holding the phone head")
    parser.add_argument("--level-swap", action="store_true",
                        help="with --oracle-envelope: also the lips' envelope at the true per-band level, and the "
                        "true envelope's movements at the lips' level (is the loss the voice or the articulation?)")
    parser.add_argument("--error-split", action="store_true",
                        help="with --oracle-envelope: also the true envelope plus the lips' error scaled by 1/2 and "
                        "1/4, and plus only its slow or only its fast part (which of the lips' errors costs words?)")
    parser.add_argument("--snrs", type=float, nargs="*", default=[0.0, -5.0])
    parser.add_argument("--noises", nargs="*", choices=("real", "babble"), default=["real", "babble"])
    parser.add_argument("--method", default="udiffse+", help="enhancement method")
    parser.add_argument("--options", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the enhancement method's options (YAML values), e.g. lips_likelihood_weight=0.5")
    parser.add_argument("--baseline-method", default=None, metavar="NAME",
                        help="also enhance with the lips by this method at its defaults ('audio-visual, NAME'), "
                             "and pair the audio-visual system against it")
    parser.add_argument("--enhance-systems", nargs="+", choices=ENHANCE_SYSTEMS, default=list(ENHANCE_SYSTEMS),
                        help="the enhancement systems to run (e.g. leave out those another run already has)")
    parser.add_argument("--enhance-guidance", type=float, default=1.0, help="guidance w of audio-visual enhancement")
    parser.add_argument("--lip-agreement", action=argparse.BooleanOptionalAction, default=None,
                        help="weigh the lips by their agreement with the sound (default: avdiff's)")
    parser.add_argument("--start-sigma", type=float, default=None,
                        help="posterior start level in units of sigma_data (default: the method's)")
    parser.add_argument("--parts", nargs="+", choices=("generate", "enhance"), default=["generate", "enhance"])
    parser.add_argument("--whisper", type=Path, default=None, help="CTranslate2 Whisper folder (open-set WER)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def new_sentence_items(test: Path, train: list[Path], count: int) -> list[dict]:
    """The first `count` items of the test manifest whose sentence no training manifest holds."""
    from avdiff.data.manifest import read_manifest

    seen = {item.get("text") for manifest in train for item in read_manifest(manifest)}
    items = [item for item in read_manifest(test) if item.get("text") not in seen]
    return items[:count]


class Scorer:
    """Metrics of an estimate against its reference, recognisers loaded once."""

    def __init__(self, whisper: Path | None) -> None:
        from avdiff.evaluation.recognisers import GridRecogniser, WhisperRecogniser

        self.grid = GridRecogniser()
        self.whisper = WhisperRecogniser(whisper) if whisper else None

    def __call__(self, reference: np.ndarray, estimate: np.ndarray, text: str, metrics: tuple[str, ...]) -> dict:
        from avdiff.evaluation.harmonicity import harmonicity
        from avdiff.evaluation.metrics import compute_metrics
        from avdiff.evaluation.recognisers import slot_hits
        from avdiff.evaluation.wer import normalize_words, word_error_rate

        signal = tuple(m for m in metrics if m in ("si_sdr", "pesq_wb", "estoi"))
        scores = dict(compute_metrics(reference, estimate, metrics=signal).values)
        heard = self.grid(estimate)
        scores["wer_grid"] = word_error_rate(text, heard)
        scores["heard"] = heard
        scores.update({k: v for k, v in (slot_hits(normalize_words(text), normalize_words(heard)) or {}).items()})
        if "hnr_db" in metrics:  # harmonics where the reference has them (avdiff.evaluation.harmonicity)
            scores.update(harmonicity(reference, estimate))
        if self.whisper is not None and "wer_whisper" in metrics:
            scores["wer_whisper"] = word_error_rate(text, self.whisper(estimate))
        return scores


def clip_inputs(test: Path, item: dict) -> tuple[np.ndarray, "MouthVideo"]:
    """(clean audio at 16 kHz, mouth video with its face mask) of a manifest item."""
    from avdiff.data.manifest import resolve
    from avdiff.media.audio import load_audio
    from avdiff.pipeline.inputs import MouthVideo

    audio = load_audio(resolve(test, item["audio"]), 16000).astype(np.float32)
    rois = np.load(resolve(test, item["video"]))
    face_ok = np.asarray(item.get("face_ok", [True] * len(rois)), dtype=bool)
    return audio, MouthVideo(rois, face_ok)


def true_envelope_stft(pipeline, clean: np.ndarray) -> torch.Tensor:
    """(1, bands, T) log-mel envelope of the peak-normalised clean speech on the STFT grid."""
    from avdiff.audio.envelope import log_mel_envelope

    bands = pipeline.lip_encoder.config.envelope_bands
    wave = torch.from_numpy(clean / max(float(np.abs(clean).max()), 1e-9)).unsqueeze(0)
    transform = pipeline.transform
    power = transform.decompress(transform.to_complex(transform.encode(wave))).abs().square()
    return log_mel_envelope(power, bands, transform.config.sample_rate)


def true_envelope(pipeline, clean: np.ndarray, video_frames: int) -> torch.Tensor:
    """(T_v, bands) log-mel envelope of the clean speech per video frame: what the lips are trained to say."""
    from avdiff.audio.envelope import per_video_frame
    from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME

    envelope = true_envelope_stft(pipeline, clean)
    mask = torch.ones(1, envelope.shape[-1], dtype=torch.bool)
    return per_video_frame(envelope, mask, video_frames, STFT_FRAMES_PER_VIDEO_FRAME)[0][0].T


def with_oracle_envelope(pipeline, envelope: torch.Tensor, run: Callable) -> tuple[np.ndarray, int]:
    """`run()` with the lips' envelope channels replaced by the true envelope (a diagnostic upper
    bound: how well the score network speaks from a perfect envelope)."""
    original = pipeline.encode_lips

    def encode(video, **options):
        embeddings = original(video, **options)
        embeddings[:, : envelope.shape[1]] = envelope[: len(embeddings)].to(embeddings)
        return embeddings

    pipeline.encode_lips = encode
    try:
        return run()
    finally:
        pipeline.encode_lips = original


def level_swapped(movements: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """(T, bands) envelope with the frame-to-frame movements of `movements` and the per-band mean
    over the clip of `level` (a clip's mean level per band is mostly its voice and loudness)."""
    return movements - movements.mean(0, keepdim=True) + level.mean(0, keepdim=True)


def separate_envelope(pipeline, encoder_dir: Path, video) -> torch.Tensor:
    """(T_v, bands) envelope that another lip encoder predicts for `video`, through the pipeline's
    own lip path (the same crops and windows)."""
    from avdiff.models.lip_encoder import LipEncoder

    original = pipeline.lip_encoder
    pipeline.lip_encoder = LipEncoder.from_pretrained(encoder_dir).to(pipeline.device).eval()
    try:
        return pipeline.encode_lips(video)[:, : original.config.envelope_bands]
    finally:
        pipeline.lip_encoder = original


def generate_systems(pipeline, video, clean: np.ndarray, args: argparse.Namespace,
                     item_id: str | None = None) -> dict[str, Callable]:
    """system name -> a function giving (audio, network calls) of video-to-speech."""
    from avdiff.pipeline.inputs import MouthVideo

    def run(mouth: MouthVideo, w: float) -> tuple[np.ndarray, int]:
        out = pipeline.generate(mouth, steps=args.steps, guidance_scale=w, seed=args.seed,
                                guidance_min_sigma=args.guidance_min_sigma, start=args.generate_start,
                                start_sigma=args.generate_start_sigma, pitch_hz=args.pitch)
        return out.audio[0], out.network_calls

    systems = {f"lips w={w:g}": (lambda w=w: run(video, w)) for w in args.guidance}
    systems["faces masked"] = lambda: run(MouthVideo(video.rois, np.zeros_like(video.face_ok)), 1.0)
    if args.oracle_envelope is not None and pipeline.lip_encoder.config.envelope_bands:
        envelope = true_envelope(pipeline, clean, video.num_frames)
        w = args.oracle_envelope
        systems[f"oracle envelope w={w:g}"] = lambda: with_oracle_envelope(pipeline, envelope, lambda: run(video, w))
        if args.level_swap:
            systems.update(level_swap_systems(pipeline, video, envelope, lambda: run(video, w), w))
        if args.error_split:
            systems.update(error_split_systems(pipeline, video, envelope, lambda: run(video, w), w))
        if getattr(args, "template_state", None):
            from benchmarks.common.phone_templates import template_envelopes

            phonemes = args.template_state["alignments"].get(item_id)
            for name, made in template_envelopes(pipeline, video, phonemes, args.template_state, w).items():
                systems[name] = lambda made=made: with_oracle_envelope(pipeline, made, lambda: run(video, w))
    if args.envelope_encoder is not None and pipeline.lip_encoder.config.envelope_bands:
        predicted, w = separate_envelope(pipeline, args.envelope_encoder, video), args.guidance[0]
        systems[f"separate envelope w={w:g}"] = lambda: with_oracle_envelope(pipeline, predicted,
                                                                            lambda: run(video, w))
    return systems


def level_swap_systems(pipeline, video, envelope: torch.Tensor, run: Callable, w: float) -> dict[str, Callable]:
    """The two `--level-swap` hybrids of the lips' envelope and the true `envelope` (`level_swapped`)."""
    with torch.no_grad():
        predicted = pipeline.encode_lips(video)[:, : envelope.shape[1]].float()
    frames = min(len(predicted), len(envelope))
    predicted, envelope = predicted[:frames], envelope[:frames]
    return {f"lips' movements, true level w={w:g}":
            lambda: with_oracle_envelope(pipeline, level_swapped(predicted, envelope), run),
            f"true movements, lips' level w={w:g}":
            lambda: with_oracle_envelope(pipeline, level_swapped(envelope, predicted), run)}


ERROR_SCALES = (0.5, 0.25)  # the lips' error scaled by these on top of the true envelope


def error_split_systems(pipeline, video, envelope: torch.Tensor, run: Callable, w: float) -> dict[str, Callable]:
    """`--error-split`: the true `envelope` plus the lips' error scaled, or only its slow or fast part."""
    from avdiff.audio.envelope import slow_part

    with torch.no_grad():
        predicted = pipeline.encode_lips(video)[:, : envelope.shape[1]].float()
    frames = min(len(predicted), len(envelope))
    truth = envelope[:frames]
    error = predicted[:frames] - truth
    slow = slow_part(error)
    hybrids = {f"true + {scale:g} x lips' error": truth + scale * error for scale in ERROR_SCALES}
    hybrids["true + slow part of lips' error"] = truth + slow
    hybrids["true + fast part of lips' error"] = truth + (error - slow)
    return {f"{name} w={w:g}": (lambda hybrid=hybrid: with_oracle_envelope(pipeline, hybrid, run))
            for name, hybrid in hybrids.items()}


def timed(run: Callable[[], tuple[np.ndarray, int]]) -> tuple[np.ndarray, int, float]:
    """(estimate, network calls, seconds) of one system's run."""
    start = time.perf_counter()
    estimate, calls = run()
    return estimate, calls, time.perf_counter() - start


def score_generation(pipeline, items: list[dict], args: argparse.Namespace, scorer: Scorer, rows: Rows) -> None:
    """Video-to-speech rows of every (clip, system) not yet in `rows`."""
    for item in items:
        clean, video = clip_inputs(args.test, item)
        for system, run in generate_systems(pipeline, video, clean, args, item["id"]).items():
            key = f"generate|{system}|{item['id']}"
            if key in rows.done:
                continue
            estimate, calls, seconds = timed(run)
            estimate = estimate[: len(clean)]
            scores = scorer(clean[: len(estimate)], estimate, item["text"], V2S_METRICS)
            rows.add({"key": key, "part": "generate", "system": system, "item": item["id"], "text": item["text"],
                      "calls": calls, "seconds": seconds, **scores})


def agreement_argument(args: argparse.Namespace) -> dict:
    """`lip_agreement=` for `enhance` / `extract` when the run names it (else avdiff's default)."""
    return {} if args.lip_agreement is None else {"lip_agreement": args.lip_agreement}


def enhance_systems(pipeline, noisy: np.ndarray, video, args: argparse.Namespace) -> dict[str, Callable]:
    """system name -> a function giving (estimate, network calls)."""
    from avdiff.evaluation.baselines import noisereduce_file

    options = parse_options(args.options)
    if args.start_sigma is not None:
        options["start_sigma"] = args.start_sigma

    agreement = agreement_argument(args)

    def run(with_video, method: str = args.method, method_options: dict | None = options) -> tuple[np.ndarray, int]:
        guidance = args.enhance_guidance if with_video is not None else 1.0  # nothing to guide with
        out = pipeline.enhance(noisy, sample_rate=16000, video=with_video, method=method, steps=args.steps,
                               seed=args.seed, options=method_options, guidance_scale=guidance, **agreement)
        return out.audio, out.network_calls

    systems = {"noisy": lambda: (noisy, 0), "noisereduce": lambda: (noisereduce_file(noisy), 0),
               "audio-only": lambda: run(None), "audio-visual": lambda: run(video)}
    chosen = {name: systems[name] for name in args.enhance_systems}
    if args.baseline_method:
        chosen[f"audio-visual, {args.baseline_method}"] = lambda: run(video, args.baseline_method, None)
    return chosen


def enhancement_mixtures(items: list[dict], args: argparse.Namespace) -> Iterator[tuple]:
    """(noise kind, snr, item, clean, video, noisy, reference) of every mixture of `args.noises` x
    `args.snrs` x items: real noise, or babble of the other clips' speakers, seeded per mixture."""
    from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr

    bank = NoiseBank(find_noise_dir())
    inputs = [clip_inputs(args.test, item) for item in items]  # read once, for the mixtures and the babble
    voices = [(item["id"], item["speaker"], clean) for item, (clean, _) in zip(items, inputs)]
    for noise_kind in args.noises:
        for snr in args.snrs:
            for number, (item, (clean, video)) in enumerate(zip(items, inputs)):
                rng = np.random.default_rng([args.seed, int(snr * 10) + 100, number, noise_kind == "babble"])
                noise = (bank.excerpt(len(clean), rng) if noise_kind == "real"
                         else babble(voices, item["speaker"], len(clean), rng))
                noisy, reference = mix_at_snr(clean, noise, snr)
                yield noise_kind, snr, item, clean, video, noisy, reference


def score_enhancement(pipeline, items: list[dict], args: argparse.Namespace, scorer: Scorer, rows: Rows) -> None:
    """Enhancement rows of every (noise, SNR, clip, system) not yet in `rows`."""
    for noise_kind, snr, item, _, video, noisy, reference in enhancement_mixtures(items, args):
        for system, run in enhance_systems(pipeline, noisy, video, args).items():
            key = f"enhance|{system}|{noise_kind}|{snr:g}|{item['id']}"
            if key in rows.done:
                continue
            estimate, calls, seconds = timed(run)
            scores = scorer(reference, estimate, item["text"], ENHANCE_METRICS)
            rows.add({"key": key, "part": "enhance", "system": system, "noise": noise_kind, "snr": snr,
                      "item": item["id"], "calls": calls, "seconds": seconds, **scores})


def paired(rows: list[dict], system: str, other: str, metric: str, where: dict) -> list[float]:
    """Per-item differences system - other among rows matching `where` (e.g. noise and SNR)."""
    def matching(row: dict) -> bool:
        return all(row.get(k) == v for k, v in where.items()) and metric in row

    index = {row["item"]: row[metric] for row in rows if row["system"] == other and matching(row)}
    return [row[metric] - index[row["item"]] for row in rows
            if row["system"] == system and matching(row) and row["item"] in index]


def summary_numbers(rows: list[dict]) -> dict:
    """Per-system means ± 95 % CI and the paired differences the issue's targets are about."""
    generated = [row for row in rows if row["part"] == "generate"]
    enhanced = [row for row in rows if row["part"] == "enhance"]
    numbers: dict = {}
    if generated:
        metrics = tuple(m for m in V2S_METRICS if any(m in row for row in generated))
        lips = sorted({row["system"] for row in generated if row["system"].startswith("lips")})
        numbers["generate"] = grouped_summary(generated, ("system",), metrics)
        numbers["generate_vs_masked"] = [
            {"system": system, **{m: mean_ci_values(paired(generated, system, "faces masked", m, {}))
                                  for m in ("wer_grid", "estoi")}} for system in lips]
    if enhanced:
        numbers["enhance"] = grouped_summary(enhanced, ("noise", "snr", "system"), ENHANCE_METRICS)
        numbers["enhance_av_minus_audio"] = [
            {"noise": noise, "snr": snr, **{m: mean_ci_values(paired(enhanced, "audio-visual", "audio-only", m,
                                                                     {"noise": noise, "snr": snr}))
                                            for m in ENHANCE_METRICS}}
            for noise in sorted({row["noise"] for row in enhanced}) for snr in sorted({row["snr"] for row in enhanced})]
        baselines = sorted({row["system"] for row in enhanced if row["system"].startswith("audio-visual, ")})
        numbers["enhance_av_minus_baseline"] = [
            {"baseline": base, "noise": noise, "snr": snr, **{m: mean_ci_values(paired(
                enhanced, "audio-visual", base, m, {"noise": noise, "snr": snr})) for m in ENHANCE_METRICS}}
            for base in baselines for noise in sorted({row["noise"] for row in enhanced})
            for snr in sorted({row["snr"] for row in enhanced})]
    return numbers


def summary(numbers: dict, args: argparse.Namespace) -> str:
    """summary.md: the markdown of `summary_numbers`."""
    parts = [f"Model {args.model}; test {args.test} (sentences never trained on); mean ± 95 % CI."]
    if "generate" in numbers:
        parts += ["## Video-to-speech", summary_table(numbers["generate"], ("system",))]
        lines = ["| lips | Δ wer_grid vs masked | Δ estoi vs masked |", "| --- | --- | --- |"]
        lines += [f"| {entry['system']} | " + " | ".join(format_mean_ci(entry[m]) for m in ("wer_grid", "estoi")) + " |"
                  for entry in numbers["generate_vs_masked"]]
        parts += ["Paired differences (lips - masked):", "\n".join(lines)]
    if "enhance" in numbers:
        start = "the method's" if args.start_sigma is None else f"{args.start_sigma:g} σ_data"
        parts += [f"## Enhancement ({args.method}, guidance w = {args.enhance_guidance:g}, start level {start})",
                  summary_table(numbers["enhance"], ("noise", "snr", "system"))]
        lines = ["| noise | SNR | Δ si_sdr | Δ pesq_wb | Δ estoi | Δ wer_grid |", "|" + " --- |" * 6]
        lines += [f"| {entry['noise']} | {entry['snr']:g} | " + " | ".join(format_mean_ci(entry[m]) for m in ENHANCE_METRICS)
                  + " |" for entry in numbers["enhance_av_minus_audio"]]
        parts += ["Paired differences (audio-visual - audio-only):", "\n".join(lines)]
        for base in sorted({entry["baseline"] for entry in numbers.get("enhance_av_minus_baseline", [])}):
            lines = ["| noise | SNR | Δ si_sdr | Δ pesq_wb | Δ estoi | Δ wer_grid |", "|" + " --- |" * 6]
            lines += [f"| {e['noise']} | {e['snr']:g} | " + " | ".join(format_mean_ci(e[m]) for m in ENHANCE_METRICS)
                      + " |" for e in numbers["enhance_av_minus_baseline"] if e["baseline"] == base]
            parts += [f"Paired differences (audio-visual - {base}):", "\n".join(lines)]
    return "\n\n".join(parts) + "\n"


def held_out_setup(args: argparse.Namespace) -> tuple[list[dict], "AVDiffusionPipeline"]:
    """`args.clips` test items with new sentences (after the first `args.skip_clips`, where a script
    offers that), and the pipeline of `args.model`."""
    from avdiff.pipeline.loading import load_pipeline

    skip = getattr(args, "skip_clips", 0)
    items = new_sentence_items(args.test, args.train, skip + args.clips)[skip:]
    if not items:
        raise SystemExit(f"{args.test}: no item with a sentence outside the training manifests")
    return items, load_pipeline(args.model)  # a diffusion model, or a speech VAE for enhancement


def template_state(pipeline, args: argparse.Namespace) -> dict:
    """--phone-templates: the templates, the phone head (or None) and the test corpus's alignments."""
    from avdiff.data.manifest import read_manifest
    from avdiff.data.phone_labels import read_alignments
    from benchmarks.common.phone_templates import load_phone_head, phone_templates

    training = read_alignments(args.phone_templates)
    clips = []
    for item in read_manifest(args.phone_templates)[: args.template_clips]:
        clean, video = clip_inputs(args.phone_templates, item)
        clips.append((true_envelope(pipeline, clean, video.num_frames), training.get(item["id"])))
    return {"templates": phone_templates(clips),
            "head": load_phone_head(args.phone_head) if args.phone_head else None,
            "alignments": read_alignments(args.test)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    items, pipeline = held_out_setup(args)
    scorer, rows = Scorer(args.whisper), Rows(args.output / "rows.jsonl")
    print(f"{len(items)} held-out clips; rows so far: {len(rows.rows)}", flush=True)
    if args.phone_templates is not None:
        args.template_state = template_state(pipeline, args)
    if "generate" in args.parts:
        score_generation(pipeline, items, args, scorer, rows)
    if "enhance" in args.parts:
        score_enhancement(pipeline, items, args, scorer, rows)
    numbers = summary_numbers(rows.rows)
    text = summary(numbers, args)
    (args.output / "summary.md").write_text(text)
    record(args.output, args, numbers)
    print(text)


if __name__ == "__main__":
    main()
