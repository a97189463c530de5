"""`avdiff demo`: the embedded default, end to end, resumable stage by stage.

synthetic corpus -> short training -> video-to-speech on held-out silent clips (and the
unconditional baseline: the same model with every face masked) -> enhancement of held-out
clips mixed with real noise at 0 and 5 dB, audio-only and audio-visual (and noisereduce)
-> evaluation -> report.md / report.html with tables, spectrograms and links to the audio.

Every stage leaves its outputs in DIR and is skipped when they are there, so re-running the
same command continues where it stopped (training resumes from its latest checkpoint).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from avdiff.config import AVDiffConfig, load_config, packaged_config, save_config
from avdiff.data.manifest import read_manifest, resolve
from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr
from avdiff.demo.report import spectrogram_png, write_report
from avdiff.timegrid import SAMPLE_RATE
from avdiff.pipeline.batch import write_wav
from avdiff.pipeline.inputs import MouthVideo

DEFAULT_CONFIG = packaged_config("synth-cpu")  # avdiff/configs/: inside the package, also when installed


@dataclass
class DemoSettings:
    """What the demo does; every field is a command-line option of `avdiff demo`."""

    output: Path
    config: Path = DEFAULT_CONFIG
    overrides: list[str] = field(default_factory=list)
    device: str = "cpu"
    num_utterances: int = 800
    seed: int = 0
    workers: int = 2
    max_steps: int | None = None
    max_train_minutes: float = 15.0
    test_clips: int = 6
    snrs: tuple[float, ...] = (0.0, 5.0)
    method: str = "udiffse+"
    generate_steps: int | None = None
    enhance_steps: int | None = None
    guidance: float = 2.0  # classifier-free guidance of video-to-speech (LipVoicer uses 2)


def log(message: str) -> None:
    tqdm.write(f"[demo] {message}")


def stage_synth(settings: DemoSettings) -> Path:
    from avdiff.synth.corpus import SynthSettings, synthesize_corpus

    data = settings.output / "data"
    if (data / "synth.json").is_file():
        log(f"corpus: {data} is complete, skipped")
        return data
    if data.exists():
        shutil.rmtree(data)  # an interrupted synthesis: start it again
    log(f"corpus: {settings.num_utterances} synthetic utterances -> {data}")
    synthesize_corpus(data, SynthSettings(num_utterances=settings.num_utterances, seed=settings.seed),
                      workers=settings.workers, progress=True)
    return data


def stage_train(settings: DemoSettings, data: Path) -> Path:
    from avdiff.training.checkpoints import find_latest_checkpoint
    from avdiff.training.trainer import train

    run = settings.output / "run"
    model = run / "model"
    if (model / "avdiff_pipeline.json").is_file():
        log(f"training: {model} exists, skipped")
        return model
    overrides = [f"data.train_manifest={data / 'train.jsonl'}", f"data.valid_manifest={data / 'valid.jsonl'}",
                 *settings.overrides]
    config = load_config(AVDiffConfig, settings.config, overrides)
    resume = "latest" if run.is_dir() and find_latest_checkpoint(run) else None
    log(f"training: {settings.config.name} for at most {settings.max_train_minutes:g} minutes"
        + (" (resuming)" if resume else ""))
    train(config, run, max_steps=settings.max_steps, resume=resume, cpu=settings.device == "cpu",
          max_minutes=settings.max_train_minutes)
    return model


def test_items(data: Path, count: int) -> list[dict]:
    return read_manifest(data / "test.jsonl")[:count]


def stage_generate(settings: DemoSettings, pipeline, data: Path) -> dict[str, Path]:
    """Video-to-speech on silent test clips, with the lips and with every face masked."""
    folders = {"reference": settings.output / "generation" / "reference",
               "lips": settings.output / "generation" / "lips",
               "unconditional": settings.output / "generation" / "unconditional"}
    items = test_items(data, settings.test_clips)
    for item in tqdm(items, desc="video-to-speech", unit="clip"):
        rois = np.load(resolve(data / "test.jsonl", item["video"]))
        face_ok = np.asarray(item.get("face_ok", [True] * len(rois)), dtype=bool)
        clean, _ = sf.read(resolve(data / "test.jsonl", item["audio"]), dtype="float32")
        write_wav_once(folders["reference"] / f"{item['id']}.wav", lambda: clean, SAMPLE_RATE)
        for name, mask in (("lips", face_ok), ("unconditional", np.zeros_like(face_ok))):
            path = folders[name] / f"{item['id']}.wav"
            guidance = settings.guidance if name == "lips" else 1.0  # no condition to guide with
            write_wav_once(path, lambda mask=mask, guidance=guidance: pipeline.generate(
                MouthVideo(rois, mask), seed=settings.seed, steps=settings.generate_steps,
                guidance_scale=guidance).audio[0], SAMPLE_RATE)
    return folders


def write_wav_once(path: Path, make, sample_rate: int) -> None:
    if not path.is_file():
        write_wav(path, make(), sample_rate)


def stage_enhance(settings: DemoSettings, pipeline, data: Path) -> dict[str, dict[str, Path]]:
    """Mix test clips with noise at each SNR; enhance audio-only, audio-visual and with noisereduce."""
    from avdiff.evaluation import noisereduce_folder

    bank = NoiseBank(find_noise_dir())
    log(f"noise: {bank.source}")
    rng = np.random.default_rng(settings.seed + 1)
    folders: dict[str, dict[str, Path]] = {}
    items = test_items(data, settings.test_clips)
    for snr in settings.snrs:
        root = settings.output / "enhancement" / f"{snr:g}dB"
        folders[f"{snr:g}dB"] = paths = {name: root / name for name in ("reference", "noisy", "audio-only",
                                                                         "audio-visual", "noisereduce")}
        for item in tqdm(items, desc=f"enhance {snr:g} dB", unit="clip"):
            clean, _ = sf.read(resolve(data / "test.jsonl", item["audio"]), dtype="float32")
            noise = bank.excerpt(len(clean), rng)
            noisy, reference = mix_at_snr(clean, noise, snr)
            write_wav_once(paths["reference"] / f"{item['id']}.wav", lambda: reference, SAMPLE_RATE)
            write_wav_once(paths["noisy"] / f"{item['id']}.wav", lambda: noisy, SAMPLE_RATE)
            noisy_file = paths["noisy"] / f"{item['id']}.wav"
            rois = np.load(resolve(data / "test.jsonl", item["video"]))
            face_ok = np.asarray(item.get("face_ok", [True] * len(rois)), dtype=bool)
            for name, video in (("audio-only", None), ("audio-visual", MouthVideo(rois, face_ok))):
                write_wav_once(paths[name] / f"{item['id']}.wav", lambda video=video: pipeline.enhance(
                    noisy_file, video=video, method=settings.method, steps=settings.enhance_steps,
                    seed=settings.seed).audio, SAMPLE_RATE)
        if not any(paths["noisereduce"].glob("*.wav")):
            noisereduce_folder(paths["noisy"], paths["noisereduce"])
    return folders


def stage_evaluate(settings: DemoSettings, generation: dict[str, Path], enhancement: dict[str, dict[str, Path]]) -> dict:
    from avdiff.evaluation import evaluate_folders

    results: dict = {"generation": {}, "enhancement": {}}
    for name in ("lips", "unconditional"):
        result = evaluate_folders(generation["reference"], generation[name])
        result.write(settings.output / "metrics" / f"generation-{name}.json")
        results["generation"][name] = result.summary
    for snr, paths in enhancement.items():
        results["enhancement"][snr] = {}
        for name in ("noisy", "noisereduce", "audio-only", "audio-visual"):
            result = evaluate_folders(paths["reference"], paths[name])
            result.write(settings.output / "metrics" / f"enhancement-{snr}-{name}.json")
            results["enhancement"][snr][name] = result.summary
    (settings.output / "metrics" / "summary.json").write_text(json.dumps(results, indent=2))
    return results


def stage_report(settings: DemoSettings, results: dict, generation: dict[str, Path],
                 enhancement: dict[str, dict[str, Path]], timings: dict[str, float]) -> Path:
    from avdiff.evaluation import markdown_table

    out = settings.output
    first = sorted(generation["reference"].glob("*.wav"))[0].name
    snr = next(iter(enhancement))
    signals = {"clean": generation["reference"] / first, "noisy": enhancement[snr]["noisy"] / first,
               "enhanced audio-only": enhancement[snr]["audio-only"] / first,
               "enhanced audio-visual": enhancement[snr]["audio-visual"] / first,
               "generated from lips": generation["lips"] / first,
               "unconditional": generation["unconditional"] / first}
    picture = spectrogram_png({k: sf.read(v, dtype="float32")[0] for k, v in signals.items()},
                              out / "figures" / "spectrograms.png", title=f"{first} ({snr} noise for the noisy row)")
    sections = [
        ("Video-to-speech (held-out silent clips)", markdown_table(results["generation"])
         + f"\n\n'lips' uses classifier-free guidance w = {settings.guidance:g}; 'unconditional' is the "
           "same model with every face masked: the lips must beat it."),
    ]
    for snr_name, systems in results["enhancement"].items():
        sections.append((f"Enhancement at {snr_name} SNR ({settings.method})", markdown_table(systems)))
    sections.append(("Run", "\n".join(f"{k}: {v:.0f} s" for k, v in timings.items())
                     + f"\nconfig: {settings.config.name}; device: {settings.device}; metrics: mean and 95 % CI."
                     + "\nSynthetic speech and tiny data: these figures show the machinery works end to end, "
                       "not how the model does on real speech."))
    audio = [(first, [(name, path) for name, path in signals.items()])]
    markdown, _ = write_report(out, "avdiff demo report", sections, [("Spectrograms", picture)], audio)
    return markdown


def run_demo(settings: DemoSettings) -> Path:
    """Run (or continue) every stage; returns the path of report.md."""
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    settings.output.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data = stage_synth(settings)
    timings["corpus"] = time.perf_counter() - start
    start = time.perf_counter()
    model = stage_train(settings, data)
    timings["training"] = time.perf_counter() - start
    save_config(load_config(AVDiffConfig, model / "config.yaml"), settings.output / "config.yaml",
                header="resolved config of the demo's model")
    pipeline = AVDiffusionPipeline.from_pretrained(model, device=settings.device)
    start = time.perf_counter()
    generation = stage_generate(settings, pipeline, data)
    timings["video-to-speech"] = time.perf_counter() - start
    start = time.perf_counter()
    enhancement = stage_enhance(settings, pipeline, data)
    timings["enhancement"] = time.perf_counter() - start
    start = time.perf_counter()
    results = stage_evaluate(settings, generation, enhancement)
    timings["evaluation"] = time.perf_counter() - start
    report = stage_report(settings, results, generation, enhancement, timings)
    log(f"report: {report} and {report.with_suffix('.html')}")
    return report
