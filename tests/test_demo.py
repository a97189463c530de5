"""`avdiff demo` end to end on a tiny setting: every stage runs, the report is written, a re-run resumes."""

from __future__ import annotations

import json
import time

from avdiff.cli import main


def test_demo_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--output", str(out), "--device", "cpu", "--num-utterances", "30", "--workers", "1",
            "--max-steps", "3", "--test-clips", "1", "--snr", "5", "--generate-steps", "2", "--enhance-steps", "2",
            "--set", "training.batch_size=2", "--set", "data.crop_frames=64", "--set", "training.validate_every=0",
            "--set", "training.sigma_data_batches=2", "--set", "data.num_workers=0"]
    assert main(args) == 0
    report = (out / "report.md").read_text()
    assert "Video-to-speech" in report and "Enhancement at 5dB SNR" in report
    assert "unconditional" in report and "noisereduce" in report and "audio-visual" in report
    assert "guidance w = 2" in report
    assert (out / "report.html").read_text().count("<audio") >= 6
    assert (out / "figures" / "spectrograms.png").stat().st_size > 10_000
    summary = json.loads((out / "metrics" / "summary.json").read_text())
    for system in ("noisy", "noisereduce", "audio-only", "audio-visual"):
        assert "si_sdr" in summary["enhancement"]["5dB"][system]
    assert set(summary["generation"]) == {"lips", "unconditional"}
    assert (out / "run" / "model" / "avdiff_pipeline.json").is_file() and (out / "config.yaml").is_file()
    stamp = (out / "enhancement" / "5dB" / "audio-visual").stat().st_mtime_ns
    start = time.perf_counter()
    assert main(args) == 0  # every stage's outputs exist: nothing is redone but the report
    assert time.perf_counter() - start < 60
    assert (out / "enhancement" / "5dB" / "audio-visual").stat().st_mtime_ns == stamp
