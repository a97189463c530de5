"""The demo's held-out test set and what each model makes of it: video-to-speech, enhancement, metrics.

Every model (the shipped one and the demo's own) is run on the same clips, the same noisy
mixtures and against the same references, so their rows compare; the references, mixtures and
the noisereduce baseline are made once. Outputs are written once: a re-run skips what exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
import yaml
from tqdm.auto import tqdm

from avdiff.data.manifest import read_manifest, resolve
from avdiff.demo.mixing import NoiseBank, find_noise_dir, mix_at_snr
from avdiff.demo.settings import DemoSettings, log
from avdiff.evaluation.recognisers import GRID
from avdiff.media.audio import write_wav
from avdiff.pipeline.inputs import MouthVideo
from avdiff.timegrid import SAMPLE_RATE

if TYPE_CHECKING:
    from avdiff.evaluation import EvaluationResult

ASR = GRID  # the closed-set GRID-grammar recogniser: the synthetic corpus speaks GRID sentences
GENERATED = ("lips", "unconditional")  # video-to-speech with the lips / with every face masked
ENHANCED = ("audio-only", "audio-visual")
BASELINES = ("noisy", "noisereduce")


@dataclass
class TestSet:
    """The held-out clips every model runs on, with their shared references and noisy mixtures."""

    manifest: Path
    items: list[dict]
    reference: Path  # clean speech of the clips (video-to-speech reference), with <id>.txt transcripts
    mixtures: dict[str, Path]  # "5dB" -> folder of reference/, noisy/, noisereduce/ (and <id>.txt)

    def mouth(self, item: dict) -> MouthVideo:
        """The clip's mouth crops, with its per-frame face flags."""
        rois = np.load(resolve(self.manifest, item["video"]))
        return MouthVideo(rois, np.asarray(item.get("face_ok", [True] * len(rois)), dtype=bool))

    def clean(self, item: dict) -> np.ndarray:
        return sf.read(resolve(self.manifest, item["audio"]), dtype="float32")[0]


@dataclass
class DemoModel:
    """A model the demo runs: its name in the report, its folder, and the folder its outputs go to."""

    label: str  # section headings: "shipped model v2s", "this demo's own 600-step model"
    short: str  # spectrogram rows and audio links: "v2s", "own"
    path: Path
    root: Path  # generation/<system>/, enhancement/<snr>/<system>/ and metrics/ below it

    def generated(self, system: str) -> Path:
        return self.root / "generation" / system

    def enhanced(self, snr: str, system: str) -> Path:
        return self.root / "enhancement" / snr / system


def write_once(path: Path, make: Callable[[], np.ndarray]) -> None:
    """Write `make()` as a wav unless `path` exists (what makes every stage resumable)."""
    if not path.is_file():
        write_wav(path, make(), SAMPLE_RATE)


def write_transcript(wav: Path, item: dict) -> None:
    """<id>.txt beside a reference wav: the manifest's text, which the WER is measured against."""
    if item.get("text") and not wav.with_suffix(".txt").is_file():
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.with_suffix(".txt").write_text(item["text"] + "\n", encoding="utf-8")


def prepare_test_set(settings: DemoSettings, data: Path) -> TestSet:
    """The first `test_clips` held-out clips: clean references, noisy mixtures at each SNR, noisereduce."""
    from avdiff.evaluation import noisereduce_folder

    manifest = data / "test.jsonl"
    mixtures = {f"{snr:g}dB": settings.output / "enhancement" / f"{snr:g}dB" for snr in settings.snrs}
    reference = settings.output / "generation" / "reference"
    test = TestSet(manifest, read_manifest(manifest)[:settings.test_clips], reference, mixtures)
    for item in test.items:
        write_once(test.reference / f"{item['id']}.wav", lambda item=item: test.clean(item))
        write_transcript(test.reference / f"{item['id']}.wav", item)
    bank = NoiseBank(find_noise_dir())
    log(f"noise: {bank.source}")
    rng = np.random.default_rng(settings.seed + 1)
    for snr, root in zip(settings.snrs, test.mixtures.values()):
        for item in test.items:
            clean = test.clean(item)
            noisy, target = mix_at_snr(clean, bank.excerpt(len(clean), rng), snr)  # drawn even when written
            write_once(root / "reference" / f"{item['id']}.wav", lambda target=target: target)
            write_once(root / "noisy" / f"{item['id']}.wav", lambda noisy=noisy: noisy)
            write_transcript(root / "reference" / f"{item['id']}.wav", item)
        if not any((root / "noisereduce").glob("*.wav")):
            noisereduce_folder(root / "noisy", root / "noisereduce")
    return test


def generation_plans(settings: DemoSettings, pipeline) -> dict[str, Any]:
    """The plan of each generated system: the model's sampling, guided with the lips; without
    them (every face masked) unguided and from noise (no condition to guide with, no lips to render)."""
    return {system: pipeline.generation_plan(steps=settings.generate_steps,
                                             guidance_scale=settings.guidance if system == "lips" else 1.0,
                                             start=None if system == "lips" else "noise")
            for system in GENERATED}


def run_generation(settings: DemoSettings, test: TestSet, model: DemoModel, pipeline) -> None:
    """Video-to-speech on the silent test clips, with the lips and with every face masked."""
    plans = generation_plans(settings, pipeline)
    record_plans(model, {f"video-to-speech ({system})": plan for system, plan in plans.items()})
    for item in tqdm(test.items, desc=f"video-to-speech ({model.short})", unit="clip"):
        video = test.mouth(item)
        for system in GENERATED:
            masked = MouthVideo(video.rois, np.zeros_like(video.face_ok)) if system == "unconditional" else video
            write_once(model.generated(system) / f"{item['id']}.wav", lambda masked=masked, plan=plans[system]:
                       pipeline.generate(masked, plan, seed=settings.seed).audio[0])


def run_enhancement(settings: DemoSettings, test: TestSet, model: DemoModel, pipeline) -> None:
    """Enhance every noisy mixture audio-only and audio-visual."""
    plan = pipeline.enhancement_plan(settings.method, steps=settings.enhance_steps)
    record_plans(model, {"enhancement": plan})
    for snr, root in test.mixtures.items():
        for item in tqdm(test.items, desc=f"enhance {snr} ({model.short})", unit="clip"):
            noisy = root / "noisy" / f"{item['id']}.wav"
            for system, video in (("audio-only", None), ("audio-visual", test.mouth(item))):
                write_once(model.enhanced(snr, system) / f"{item['id']}.wav", lambda video=video: pipeline.enhance(
                    noisy, video=video, plan=plan, seed=settings.seed).audio)


PLANS_NAME = "plans.yaml"  # beside a model's outputs: what each of its runs resolved to


def record_plans(model: DemoModel, plans: dict[str, Any]) -> None:
    """Add `plans` (name -> GenerationPlan / EnhancementPlan) to the model's plans.yaml, and their
    one-line descriptions, which the report prints."""
    path = model.root / PLANS_NAME
    recorded = yaml.safe_load(path.read_text()) if path.is_file() else {}
    for name, plan in plans.items():
        recorded[name] = {"summary": plan.describe(), **plan.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recorded, sort_keys=False))


def recorded_plans(model: DemoModel) -> dict[str, dict]:
    """The model's plans.yaml (empty before its first run)."""
    path = model.root / PLANS_NAME
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


class Evaluator:
    """evaluate_folders (and evaluate_transcripts) with the GRID recogniser; each distinct note and warning is
    logged once."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def _log(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)
            log(line)

    def __call__(self, reference: Path, estimate: Path, output: Path) -> dict:
        """The estimate's summary (metric -> mean, CI, n); the per-file rows go to `output` (.json/.csv/.md)."""
        from avdiff.evaluation import evaluate_folders

        result = evaluate_folders(reference, estimate, asr_model=ASR, log=self._log)
        return self._keep(result, output)

    def transcripts(self, reference: Path, output: Path) -> dict:
        """The recogniser alone on the clean references (WER and slot summaries; empty without it)."""
        from avdiff.evaluation import evaluate_transcripts

        return self._keep(evaluate_transcripts(reference, ASR, name="clean speech", log=self._log), output)

    def _keep(self, result: EvaluationResult, output: Path) -> dict:
        """Log `result`'s notes, write its files to `output`, return its summary."""
        for note in result.notes:
            self._log(note)
        result.write(output)
        return result.summary


def evaluate_baselines(test: TestSet, evaluate: Evaluator, metrics: Path) -> dict:
    """The rows every model's tables share: the recogniser on the clean speech, the noisy input, noisereduce."""
    clean = evaluate.transcripts(test.reference, metrics / "generation-clean.json")  # not scored against itself
    tables: dict = {"generation": {}, "enhancement": {}}
    if clean:
        tables["generation"]["clean speech"] = clean
    for snr, root in test.mixtures.items():
        tables["enhancement"][snr] = {system: evaluate(root / "reference", root / system,
                                                       metrics / f"enhancement-{snr}-{system}.json")
                                      for system in BASELINES}
    return tables


def evaluate_model(test: TestSet, model: DemoModel, evaluate: Evaluator, baselines: dict) -> dict:
    """The model's tables: {"generation": system -> summary, "enhancement": snr -> system -> summary},
    with the shared baseline rows first."""
    metrics = model.root / "metrics"
    generation = {**baselines["generation"], **{
        system: evaluate(test.reference, model.generated(system), metrics / f"generation-{system}.json")
        for system in GENERATED}}
    enhancement = {snr: {**baselines["enhancement"][snr], **{
        system: evaluate(root / "reference", model.enhanced(snr, system), metrics / f"enhancement-{snr}-{system}.json")
        for system in ENHANCED}} for snr, root in test.mixtures.items()}
    return {"label": model.label, "model": str(model.path), "generation": generation, "enhancement": enhancement}


def write_summary(path: Path, tables: dict) -> None:
    """metrics/summary.json: every model's tables (and why a model is missing), for scripts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tables, indent=2) + "\n")
