"""`avdiff demo` end to end on a tiny setting: every stage runs, the report is written, a re-run resumes;
the shipped model's section is there when its folder is, and a clear note says so when it is not."""

from __future__ import annotations

import importlib.util
import json
import time

import yaml

from avdiff.cli import build_parser, main
from avdiff.demo.runner import DemoSettings, StepRate

HAS_GRID_ASR = importlib.util.find_spec("pocketsphinx") is not None
# A score UNet of 3 narrow levels: the demo's stages and report are what is tested, not the network.
TINY_SCORE_NETWORK = [item for setting in ("block_out_channels=[8,16,16]", "attention_levels=[false,false,false]",
                                           "norm_num_groups=4", "attention_head_dim=8")
                      for item in ("--set", f"score_model.unet.{setting}")]


def test_demo_is_bounded_by_steps_by_default(tmp_path):
    assert DemoSettings(output=tmp_path).max_train_minutes is None
    args = build_parser().parse_args(["demo", "--output", str(tmp_path)])
    assert args.max_train_minutes is None and args.max_steps is None and args.shipped_model == "v2s-context"


def test_the_time_left_is_estimated_once_from_the_timed_steps():
    times = iter([100.0, 101.0, 102.0, 103.0, 104.0])
    rate = StepRate(after=2, clock=lambda: next(times))
    assert [rate.estimate(step, 602) for step in (1, 2)] == [None, None]  # step 1 starts the clock
    line = rate.estimate(3, 602)
    assert line.startswith("training: 602 steps, about 10 min left at 1.00 s/step (timed over steps 2-3")
    assert rate.estimate(4, 602) is None


def test_demo_runs_end_to_end_resumes_and_adds_the_shipped_model(tmp_path, monkeypatch, capsys):
    out, models = tmp_path / "demo", tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("AVDIFF_MODELS", str(models))  # no v2s-context in it yet
    monkeypatch.setattr("avdiff.demo.runner.ESTIMATE_AFTER_STEPS", 1)  # 3 steps: estimate after timing one
    args = ["demo", "--output", str(out), "--device", "cpu", "--num-utterances", "30", "--workers", "1",
            "--max-steps", "3", "--test-clips", "1", "--snr", "5", "--generate-steps", "2", "--enhance-steps", "2",
            "--set", "training.batch_size=2", "--set", "data.crop_frames=64", "--set", "training.validate_every=0",
            "--set", "training.sigma_data_batches=2", "--set", "data.num_workers=0",
            *TINY_SCORE_NETWORK]
    assert main(args) == 0
    logged = capsys.readouterr().out.splitlines()
    missing = [line for line in logged if line.startswith("[demo] shipped model")]
    assert len(missing) == 1 and f"no shipped model 'v2s-context' in {models}" in missing[0]
    assert "[demo] training: synth-cpu.yaml, 3 optimizer steps" in logged
    assert [line for line in logged if line.startswith("[demo] training: 3 steps, about ")]
    report = (out / "report.md").read_text()
    assert "## Shipped model v2s-context\n\nno shipped model 'v2s-context'" in report and "Shipped model v2s-context:" not in report
    assert "This demo's own 3-step model: video-to-speech" in report
    assert "This demo's own 3-step model: enhancement at 5dB SNR (udiffse+)" in report
    assert "unconditional" in report and "noisereduce" in report and "guidance w = 2" in report
    # what ran, from the resolved plans (every setting in plans.yaml beside the model's outputs)
    assert "- video-to-speech (lips): sampler dpmpp_2m, 2 steps, guidance 2" in report
    assert "- video-to-speech (unconditional): sampler dpmpp_2m, 2 steps, guidance 1" in report
    assert "- enhancement: udiffse+, 2 steps x 2 samples, guidance 1" in report
    assert yaml.safe_load((out / "plans.yaml").read_text())["enhancement"]["options"]["steps"] == 2
    assert (out / "report.html").read_text().count("<audio") >= 6
    assert (out / "figures" / "spectrograms.png").stat().st_size > 10_000
    summary = json.loads((out / "metrics" / "summary.json").read_text())
    assert set(summary) == {"own", "absent", "notes"} and "Shipped model v2s-context" in summary["absent"]
    for system in ("noisy", "noisereduce", "audio-only", "audio-visual"):
        assert "si_sdr" in summary["own"]["enhancement"]["5dB"][system]
    if HAS_GRID_ASR:  # the GRID-grammar recogniser, against the manifest's text
        assert "| WER ↓ |" in report and "clean speech" in report
        assert any((out / "generation" / "reference").glob("*.txt"))
        for system in ("lips", "unconditional", "clean speech"):
            assert "wer" in summary["own"]["generation"][system]
        assert "wer" in summary["own"]["enhancement"]["5dB"]["audio-visual"]
        assert any("reference text from <reference>.txt" in note for note in summary["notes"])
    assert (out / "run" / "model" / "avdiff_pipeline.json").is_file() and (out / "config.yaml").is_file()

    (models / "v2s-context").symlink_to(out / "run" / "model")  # the model trained above stands in for the shipped one
    stamp = (out / "enhancement" / "5dB" / "audio-visual").stat().st_mtime_ns
    start = time.perf_counter()
    assert main(args) == 0  # the demo's own stages are not redone; the shipped model's are added
    assert time.perf_counter() - start < 60
    assert (out / "enhancement" / "5dB" / "audio-visual").stat().st_mtime_ns == stamp
    report = (out / "report.md").read_text()
    assert "Shipped model v2s-context: video-to-speech" in report and "Shipped model v2s-context: enhancement at 5dB" in report
    assert "This demo's own 3-step model: video-to-speech" in report and "no shipped model" not in report
    assert (out / "shipped" / "enhancement" / "5dB" / "audio-visual").is_dir()
    assert (out / "shipped" / "generation" / "lips").is_dir()
    summary = json.loads((out / "metrics" / "summary.json").read_text())
    assert set(summary) == {"v2s-context", "own", "absent", "notes"} and summary["absent"] == {}
    assert (out / "report.html").read_text().count("<audio") >= 10


def test_the_clean_speech_row_does_not_score_the_reference_against_itself(tmp_path, monkeypatch, capsys):
    import numpy as np
    import soundfile as sf

    from avdiff.demo.inference import Evaluator, TestSet, evaluate_baselines
    from avdiff.evaluation import folders

    reference = tmp_path / "reference"
    reference.mkdir()
    for index in range(2):
        sf.write(reference / f"u{index}.wav", np.random.default_rng(index).normal(0, 0.1, 16000), 16000)
        (reference / f"u{index}.txt").write_text("bin blue at f two now\n")

    class Recogniser:
        model = "fake"

        def __call__(self, audio) -> str:
            return "bin blue at f two now"

    monkeypatch.setattr(folders, "load_transcriber", lambda model: (Recogniser(), ""))
    tables = evaluate_baselines(TestSet(tmp_path / "m.jsonl", [], reference, {}), Evaluator(), tmp_path / "metrics")
    clean = tables["generation"]["clean speech"]
    assert clean["wer"]["mean"] == 0.0 and clean["wer"]["n"] == 2 and "si_sdr" not in clean
    logged = capsys.readouterr().out
    assert "left out of the mean" not in logged and "+inf" not in logged
    assert "si_sdr" not in (tmp_path / "metrics" / "generation-clean.csv").read_text()
