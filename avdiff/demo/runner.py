"""`avdiff demo`: the embedded default, end to end, resumable stage by stage.

synthetic corpus -> held-out test clips (clean references with their transcripts, mixtures with
real noise at 0 and 5 dB, noisereduce) -> the SHIPPED model (models/v2s-context) on them: video-to-speech
(and the unconditional baseline: every face masked) and enhancement, audio-only and audio-visual
-> a first report -> a short training run of the demo's own model (bounded by steps, so its
result does not depend on how busy the machine is) -> the same on the demo's own model ->
evaluation (with the GRID-grammar recogniser's WER) -> report.md / report.html with a section per
model, spectrograms and links to the audio.

Every stage leaves its outputs in DIR and is skipped when they are there, so re-running the
same command continues where it stopped (training resumes from its latest checkpoint).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avdiff.config import AVDiffConfig, load_config, save_config
from avdiff.demo.inference import (
    DemoModel, Evaluator, TestSet, evaluate_baselines, evaluate_model, prepare_test_set, run_enhancement,
    run_generation, write_summary,
)
from avdiff.demo.report import write_demo_report
from avdiff.demo.settings import DEFAULT_CONFIG, DEFAULT_SHIPPED_MODEL, NO_SHIPPED_MODEL, DemoSettings, log
from avdiff.errors import AVDiffError, InputError
from avdiff.pipeline.model_folder import INDEX_NAME
from avdiff.training.trainer import Trainer

__all__ = ["DEFAULT_CONFIG", "DEFAULT_SHIPPED_MODEL", "DemoSettings", "run_demo"]

ESTIMATE_AFTER_STEPS = 10  # steps timed (after the first, which also starts the data loader) before the estimate


def stage_synth(settings: DemoSettings) -> Path:
    """The synthetic corpus in DIR/data (made again from scratch if an earlier synthesis was cut short)."""
    import shutil

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


def own_model_dir(settings: DemoSettings) -> Path:
    """Where the demo's own training run exports its model."""
    return settings.output / "run" / "model"


def exported(model: Path) -> bool:
    """Whether `model` is a model folder (written whole: it appears by a rename when complete)."""
    return (model / INDEX_NAME).is_file()


class StepRate:
    """Seconds per optimizer step, timed from the end of the first step seen (which also pays for the data
    loader's start) over the next `after` steps; one estimate of the time left, then silence."""

    def __init__(self, after: int | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.after = ESTIMATE_AFTER_STEPS if after is None else after
        self.clock = clock
        self.start: tuple[int, float] | None = None
        self.done = False

    def estimate(self, step: int, total: int) -> str | None:
        """After step `step` of `total`: the estimate line once enough steps are timed, else None."""
        now = self.clock()
        if self.start is None:
            self.start = (step, now)
            return None
        first, began = self.start
        if self.done or step - first < self.after:
            return None
        self.done = True
        rate = (now - began) / (step - first)
        left = (total - step) * rate
        left_text = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
        return (f"training: {total} steps, about {left_text} left at {rate:.2f} s/step "
                f"(timed over steps {first + 1}-{step}; checkpoints and validation come on top)")


class TimedTrainer(Trainer):
    """The Trainer, logging once how long the rest of the run should take at the measured step rate."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rate = StepRate()

    def step(self) -> None:
        """One optimizer step (Trainer.step), then the estimate when it is due."""
        super().step()
        if self.accelerator.is_main_process and (line := self.rate.estimate(self.state.step, self.max_steps)):
            log(line)


def trained_steps(run: Path) -> int | None:
    """The step of the run's latest checkpoint (the final one for a finished run); None without one."""
    from avdiff.training.checkpoints import find_latest_checkpoint, read_state

    latest = find_latest_checkpoint(run)
    return read_state(latest).step if latest else None


def training_config(settings: DemoSettings, data: Path) -> tuple[AVDiffConfig, int]:
    """The demo's training config (on DIR/data) and its number of optimizer steps."""
    overrides = [f"data.train_manifest={data / 'train.jsonl'}", f"data.valid_manifest={data / 'valid.jsonl'}",
                 *settings.overrides]
    config = load_config(AVDiffConfig, settings.config, overrides)
    return config, settings.max_steps if settings.max_steps is not None else config.training.max_steps


def stage_train(settings: DemoSettings, data: Path) -> Path:
    """Train the demo's own model for its steps (DIR/run/model); resumes from the latest checkpoint."""
    model = own_model_dir(settings)
    run = model.parent
    if exported(model):
        log(f"training: {model} exists, skipped")
        return model
    config, steps = training_config(settings, data)
    done = trained_steps(run) if run.is_dir() else None
    budget = f", stopping early after {settings.max_train_minutes:g} minutes" if settings.max_train_minutes else ""
    log(f"training: {settings.config.name}, {steps} optimizer steps{budget}"
        + (f" (resuming at step {done})" if done else ""))
    result = TimedTrainer(config, run, max_steps=settings.max_steps, resume="latest" if done else None,
                          cpu=settings.device == "cpu", max_minutes=settings.max_train_minutes).run()
    if result.status != "finished":
        raise AVDiffError(f"training {result.status} at step {result.step} (checkpoint saved): run the same "
                          "command again to continue")
    return model


def find_shipped_model(choice: str) -> tuple[Path | None, str]:
    """The shipped model's folder, or None and the one line that says why the demo goes without it."""
    from avdiff.pipeline.shipped import resolve_model, shipped_models_dir

    if choice.lower() == NO_SHIPPED_MODEL:
        return None, f"not run (--shipped-model {NO_SHIPPED_MODEL})"
    try:
        path = resolve_model(choice)
    except InputError:
        return None, (f"no shipped model {choice!r} in {shipped_models_dir()}: its rows are skipped "
                      "(--shipped-model PATH names another model folder)")
    if not exported(path):
        return None, f"{path} is not a model folder (no {INDEX_NAME}): its rows are skipped"
    return path, ""


def run_model(settings: DemoSettings, test: TestSet, model: DemoModel, timings: dict[str, float]) -> None:
    """Video-to-speech and enhancement of the test set by one model, timed."""
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    pipeline = AVDiffusionPipeline.from_pretrained(model.path, device=settings.device)
    start = time.perf_counter()
    run_generation(settings, test, model, pipeline)
    timings[f"video-to-speech ({model.short})"] = time.perf_counter() - start
    start = time.perf_counter()
    run_enhancement(settings, test, model, pipeline)
    timings[f"enhancement ({model.short})"] = time.perf_counter() - start


def run_lines(settings: DemoSettings, timings: dict[str, float], notes: list[str]) -> list[str]:
    """The report's Run section: how long each stage took, the settings, and the evaluation's notes."""
    return [*(f"{stage}: {seconds:.0f} s" for stage, seconds in timings.items()),
            f"config of the demo's own model: {settings.config.name}; device: {settings.device}; "
            "metrics: mean and 95 % CI over the test clips.", *notes]


class Demo:
    """One run of the demo: the stages in order, the timings and the models' tables so far."""

    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.timings: dict[str, float] = {}
        self.runs: list[tuple[DemoModel, dict]] = []
        self.absent: list[tuple[str, str]] = []
        self.evaluate = Evaluator()

    def timed(self, stage: str, work: Callable[[], Any]) -> Any:
        """`work()`, its time recorded under `stage`."""
        start = time.perf_counter()
        result = work()
        self.timings[stage] = time.perf_counter() - start
        return result

    def add_model(self, test: TestSet, model: DemoModel, baselines: dict) -> None:
        """Run and evaluate one model; its tables join the report."""
        run_model(self.settings, test, model, self.timings)
        tables = self.timed(f"evaluation ({model.short})",
                            lambda: evaluate_model(test, model, self.evaluate, baselines))
        self.runs.append((model, tables))

    def add_shipped_model(self, test: TestSet, baselines: dict) -> bool:
        """Run and evaluate the shipped model (DIR/shipped/); without one, say why in the log and the report."""
        choice = self.settings.shipped_model
        shipped, why_not = find_shipped_model(choice)
        name = Path(choice).name
        log(f"shipped model: {shipped or why_not}")
        if shipped is None:
            self.absent.append(("Shipped model" + ("" if choice.lower() == NO_SHIPPED_MODEL else f" {name}"), why_not))
            return False
        self.add_model(test, DemoModel(f"shipped model {name}", name, shipped, self.settings.output / "shipped"),
                       baselines)
        return True

    def report(self, test: TestSet, pending: tuple[tuple[str, str], ...] = ()) -> Path:
        """Write report.md / .html and metrics/summary.json (a model's tables under its short name) so far."""
        out = self.settings.output
        write_summary(out / "metrics" / "summary.json", {
            **{model.short: tables for model, tables in self.runs},
            "absent": dict([*self.absent, *pending]), "notes": self.evaluate.notes})
        return write_demo_report(self.settings, test, self.runs, (self.absent, list(pending)),
                                 run_lines(self.settings, self.timings, self.evaluate.notes))


def run_demo(settings: DemoSettings) -> Path:
    """Run (or continue) every stage; returns the path of report.md."""
    settings.output.mkdir(parents=True, exist_ok=True)
    demo = Demo(settings)
    data = demo.timed("corpus", lambda: stage_synth(settings))
    test = demo.timed("test clips", lambda: prepare_test_set(settings, data))
    baselines = demo.timed("evaluation (baselines)",
                           lambda: evaluate_baselines(test, demo.evaluate, settings.output / "metrics"))
    if demo.add_shipped_model(test, baselines) and not exported(own_model_dir(settings)):
        _, steps = training_config(settings, data)
        first = demo.report(test, (("This demo's own model", f"training for {steps} steps: not done yet"),))
        log(f"report so far (the shipped model; training comes next): {first}")
    model = demo.timed("training", lambda: stage_train(settings, data))
    save_config(load_config(AVDiffConfig, model / "config.yaml"), settings.output / "config.yaml",
                header="resolved config of the demo's model")
    steps = trained_steps(model.parent)
    label = f"this demo's own {steps}-step model" if steps is not None else "this demo's own model"
    demo.add_model(test, DemoModel(label, "own", model, settings.output), baselines)
    report = demo.report(test)
    log(f"report: {report} and {report.with_suffix('.html')}")
    return report
