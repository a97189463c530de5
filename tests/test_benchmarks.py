"""The benchmark scripts run end to end on a tiny setting and write their results with the config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from avdiff.config.schema import PosteriorSettings

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_sampling_speed_benchmark_writes_results_and_config(tmp_path):
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "sampling_speed.py"), "--config",
         str(REPO_ROOT / "configs" / "tiny.yaml"), "--set", "score_model.unet.block_out_channels=[8,16]",
         "--set", "score_model.unet.attention_levels=[false,true]", "--set", "score_model.unet.norm_num_groups=4", "--set", "score_model.unet.attention_head_dim=8",
         "--calls", "4", "--seconds", "0.2", "--repeats", "1", "--batch-sizes", "1", "2", "--output", str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "results.json").read_text())
    assert [r["batch"] for r in summary["results"]] == [1, 2]
    for row in summary["results"]:
        assert row["network_calls"] == 4
        assert row["rtf"] > 0 and row["calls_per_s"] > 0
    assert "block_out_channels: [8, 16]" in (out / "config.yaml").read_text()
    assert (out / "results.md").read_text().startswith("| mode | batch |")
    assert summary["gflop_per_call"] > 0


def test_diffusion_settings_benchmark_scores_methods_variants_and_baselines(tmp_path, random_pipeline, grid_dir):
    """One real clip at one SNR: every system gets a row with its metrics; a re-run adds none."""
    model = random_pipeline.save_pretrained(tmp_path / "model")
    out = tmp_path / "bench"
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "diffusion_settings.py"), "--model", f"tiny={model}",
               "--parts", "enhance", "--methods", "udiffse+", "--variant", "few=udiffse+:steps=3,num_samples=1",
               "--grid-clips", "1", "--speech-clips", "0", "--snrs", "5", "--output", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "enhance.jsonl").read_text().splitlines()]
    assert sorted(row["system"] for row in rows) == ["few", "noisereduce", "noisy", "udiffse+"]
    calls = {row["system"]: row["calls"] for row in rows}
    assert calls["few"] == 3 and calls["udiffse+"] == PosteriorSettings().steps
    noisy = next(row for row in rows if row["system"] == "noisy")
    assert abs(noisy["si_sdr"] - 5.0) < 0.1  # the mixture is at the SNR asked for
    assert "| 5.0 | tiny | few |" in (out / "summary.md").read_text()
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert again.returncode == 0 and len((out / "enhance.jsonl").read_text().splitlines()) == len(rows)


def test_enhance_real_benchmark_scores_held_out_speakers_in_real_noise_and_babble(tmp_path, random_pipeline):
    """Three audio-only test speakers, one SNR, both noises: rows for every system, paired targets; resumable."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from test_speech_data import make_audio_only_corpus

    manifest = make_audio_only_corpus(tmp_path / "test", num_items=3, seconds=1.2)
    model = random_pipeline.save_pretrained(tmp_path / "model")
    out = tmp_path / "bench"
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "enhance_real.py"), "--model", str(model),
               "--test", str(manifest), "--snrs", "0", "--methods", "udiffse+", "--steps", "3",
               "--seconds", "1", "--output", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2 * 3  # clips x noises x systems
    assert {(r["system"], r["noise"]) for r in rows} == {(s, n) for s in ("noisy", "noisereduce", "udiffse+")
                                                         for n in ("real", "babble")}
    assert all(abs(r["si_sdr"]) < 0.5 for r in rows if r["system"] == "noisy" and r["noise"] == "real")  # 0 dB
    summary = (out / "summary.md").read_text()
    assert "3 clips of 1 s from 3 held-out speakers" in summary and "| 0 | noisereduce |" in summary
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert again.returncode == 0 and len((out / "rows.jsonl").read_text().splitlines()) == len(rows)


def test_quality_vs_calls_budgets_and_paired_tables():
    """Each sampler gets the most levels its budget pays for; tables compare clips every system ran."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from quality_vs_calls import common_items, levels_for, paired_table
    from system_specs import parse_system

    assert levels_for("predictor_corrector", {}, 12) == 6  # 2 calls per level
    assert levels_for("heun", {}, 12) == 6  # 2 per level - 1: 11 calls
    assert levels_for("dpmpp_2m", {"eta": 1.0}, 4) == 4 and levels_for("heun", {}, 1) == 1
    assert parse_system("udiffse+:nmf_pass_updates=none,steps=12,sampler_eta=0.5") == (
        "udiffse+", {"nmf_pass_updates": None, "steps": 12, "sampler_eta": 0.5})
    rows = [{"system": s, "budget": b, "item": i, "wer": w} for s, b, i, w in (
        ("pc", 60, "a", 0.5), ("pc", 60, "b", 0.7), ("pc", 60, "c", 0.9),
        ("dpm", 8, "a", 0.4), ("dpm", 8, "b", 0.6))]
    assert {r["item"] for r in common_items(rows)} == {"a", "b"}
    table = paired_table(rows, "pc@60", ("wer",))
    assert "| dpm | 8 | -0.100 ± 0.000 | 2 |" in table and "| pc | 60 | 0.000 ± 0.000 | 3 |" in table
