"""The benchmark suite: its scripts run end to end on a tiny setting, and each writes its results with
a record of the run (arguments, commit, machine, versions, time) beside them.

The scripts are modules of the `benchmarks` package, run from the repository root
(`python -m benchmarks.speed.sampling_speed`). These tests run them the way `-m` does, as
`__main__` with the command's arguments, inside the test process (a new interpreter would
spend 5 s of the test's time importing torch and the models again).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import json
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"
SCRIPTS = sorted(path for folder in ("speed", "quality") for path in (BENCHMARKS / folder).glob("*.py")
                 if path.name != "__init__.py")


@dataclass
class ModuleRun:
    returncode: int
    stderr: str


def run_module(module: str, *args: str) -> ModuleRun:
    """`python -m MODULE ARGS`, run as `__main__` in this process with `sys.argv` set as `-m` sets it."""
    saved_argv, stderr, returncode = sys.argv, io.StringIO(), 0
    sys.argv = [module, *args]
    sys.modules.pop(module, None)  # imported by another test: `-m` runs a module not imported before
    try:
        with contextlib.redirect_stderr(stderr):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        returncode = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = saved_argv
    return ModuleRun(returncode, stderr.getvalue())


def test_record_writes_arguments_commit_machine_versions_and_time(tmp_path):
    from benchmarks.common.record import read_record, record

    path = record(tmp_path / "run", {"output": tmp_path / "run", "sizes": (1, 2)}, {"rows": [{"x": 1.5}]})
    assert path == tmp_path / "run" / "record.json"
    run, results = read_record(tmp_path / "run")["run"], read_record(path)["results"]
    assert results == {"rows": [{"x": 1.5}]}
    assert run["arguments"] == {"output": str(tmp_path / "run"), "sizes": [1, 2]}
    assert run["commit"] and run["timestamp"].endswith("+00:00")  # 'unknown' outside a git checkout
    assert {"python", "torch", "avdiff"} <= set(run["versions"])
    machine = run["machine"]
    assert machine["cpu"] and machine["logical_cores"] >= 1 and isinstance(machine["native_bf16"], bool)


def test_every_script_is_an_importable_module_that_records_its_results():
    """No sys.path edits anywhere in the suite; every speed and quality script calls record()."""
    for path in [*BENCHMARKS.rglob("*.py"), *(REPO_ROOT / "tests" / "reliability").glob("*.py")]:
        assert "sys.path" not in path.read_text(), f"{path.relative_to(REPO_ROOT)} edits sys.path"
    for path in SCRIPTS:
        tree = ast.parse(path.read_text())
        calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
        assert "record" in calls, f"{path.relative_to(REPO_ROOT)} does not call record()"
        module = importlib.import_module(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))
        assert callable(module.main) and module.__doc__, path


def test_sampling_speed_benchmark_writes_results_and_config(tmp_path):
    out = tmp_path / "bench"
    result = run_module("benchmarks.speed.sampling_speed", "--config", str(REPO_ROOT / "configs" / "tiny.yaml"),
                        "--set", "score_model.unet.block_out_channels=[8,16]",
                        "--set", "score_model.unet.attention_levels=[false,true]",
                        "--set", "score_model.unet.norm_num_groups=4", "--set", "score_model.unet.attention_head_dim=8",
                        "--calls", "4", "--seconds", "0.2", "--repeats", "1", "--batch-sizes", "1", "2",
                        "--output", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "record.json").read_text())
    summary = record["results"]
    assert [r["batch"] for r in summary["results"]] == [1, 2]
    for row in summary["results"]:
        assert row["network_calls"] == 4
        assert row["rtf"] > 0 and row["calls_per_s"] > 0
    assert "block_out_channels: [8, 16]" in (out / "config.yaml").read_text()
    assert (out / "results.md").read_text().startswith("| mode | batch |")
    assert summary["gflop_per_call"] > 0
    assert record["run"]["command"].startswith("python -m benchmarks.speed.sampling_speed --config")
    assert record["run"]["arguments"]["batch_sizes"] == [1, 2]


def test_diffusion_settings_benchmark_scores_methods_variants_and_baselines(tmp_path, random_pipeline, grid_dir):
    """One real clip at one SNR: every system gets a row with its metrics; a re-run adds none."""
    model = random_pipeline.save_pretrained(tmp_path / "model")
    out = tmp_path / "bench"
    args = ["--model", f"tiny={model}", "--parts", "enhance", "--methods", "udiffse+",
            "--variant", "few=udiffse+:steps=3,num_samples=1", "--grid-clips", "1", "--speech-clips", "0",
            "--snrs", "5", "--output", str(out)]
    result = run_module("benchmarks.quality.diffusion_settings", *args)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "enhance.jsonl").read_text().splitlines()]
    assert sorted(row["system"] for row in rows) == ["few", "noisereduce", "noisy", "udiffse+"]
    calls = {row["system"]: row["calls"] for row in rows}
    assert calls["few"] == 3 and calls["udiffse+"] == random_pipeline.enhancement_plan("udiffse+").settings.steps
    noisy = next(row for row in rows if row["system"] == "noisy")
    assert abs(noisy["si_sdr"] - 5.0) < 0.1  # the mixture is at the SNR asked for
    assert "| 5.0 | tiny | few |" in (out / "summary.md").read_text()
    recorded = {entry["system"]: entry for entry in json.loads((out / "record.json").read_text())["results"]["enhance"]}
    assert recorded["few"]["calls"] == 3 and recorded["few"]["si_sdr"]["n"] == 1
    again = run_module("benchmarks.quality.diffusion_settings", *args)
    assert again.returncode == 0 and len((out / "enhance.jsonl").read_text().splitlines()) == len(rows)


def test_enhance_real_benchmark_scores_held_out_speakers_in_real_noise_and_babble(tmp_path, random_pipeline):
    """Three audio-only test speakers, one SNR, both noises: rows for every system, paired targets; resumable."""
    from test_speech_data import make_audio_only_corpus  # tests/ is on sys.path

    manifest = make_audio_only_corpus(tmp_path / "test", num_items=3, seconds=1.2)
    model = random_pipeline.save_pretrained(tmp_path / "model")
    out = tmp_path / "bench"
    args = ["--model", str(model), "--test", str(manifest), "--snrs", "0", "--methods", "udiffse+", "--steps", "3",
            "--seconds", "1", "--output", str(out)]
    result = run_module("benchmarks.quality.enhance_real", *args)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2 * 3  # clips x noises x systems
    assert {(r["system"], r["noise"]) for r in rows} == {(s, n) for s in ("noisy", "noisereduce", "udiffse+")
                                                         for n in ("real", "babble")}
    assert all(abs(r["si_sdr"]) < 0.5 for r in rows if r["system"] == "noisy" and r["noise"] == "real")  # 0 dB
    summary = (out / "summary.md").read_text()
    assert "3 clips of 1 s from 3 held-out speakers" in summary and "| 0 | noisereduce |" in summary
    recorded = json.loads((out / "record.json").read_text())["results"]
    assert recorded["speakers"] == 3 and {entry["vs"] for entry in recorded["paired_targets"]} == {"noisy", "noisereduce"}
    again = run_module("benchmarks.quality.enhance_real", *args)
    assert again.returncode == 0 and len((out / "rows.jsonl").read_text().splitlines()) == len(rows)


def test_enhance_real_benchmark_takes_noise_kinds_by_set_and_clean_input(tmp_path, random_pipeline, grid_dir):
    """The held-out noise set spelled out into its kinds, rows labelled with their set, clean rows given as is."""
    from test_speech_data import make_audio_only_corpus  # tests/ is on sys.path

    from benchmarks.common.noises import HELD_OUT_KINDS

    manifest = make_audio_only_corpus(tmp_path / "test", num_items=2, seconds=1.2)
    model = random_pipeline.save_pretrained(tmp_path / "model")
    out = tmp_path / "bench"
    result = run_module("benchmarks.quality.enhance_real", "--model", str(model), "--test", str(manifest), "--snrs",
                        "5", "--methods", "udiffse+", "--steps", "2", "--seconds", "1", "--noises", "held-out",
                        "--clean", "--output", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert {r["noise"] for r in rows} == {*HELD_OUT_KINDS, "clean"} and len(rows) == 2 * 3 * (len(HELD_OUT_KINDS) + 1)
    assert {r["set"] for r in rows} == {"held-out", "clean"}
    assert all(abs(r["si_sdr"] - 5) < 0.5 for r in rows if r["system"] == "noisy" and r["noise"] != "clean")
    assert all(r["si_sdr"] > 60 for r in rows if r["system"] == "noisy" and r["noise"] == "clean")
    assert "| held-out | 5.0 | udiffse+ |" in (out / "summary.md").read_text()
    bad = run_module("benchmarks.quality.enhance_real", "--model", str(model), "--test", str(manifest),
                     "--noises", "hairdryer", "--output", str(tmp_path / "bad"))
    assert bad.returncode != 0 and not (tmp_path / "bad" / "rows.jsonl").exists()


def test_every_noise_kind_is_unit_power_and_repeatable(grid_dir):
    import numpy as np
    import pytest

    from benchmarks.common.noises import KINDS, NoiseMaker

    voices = [np.random.default_rng(k).standard_normal(20000).astype(np.float32) for k in range(5)]
    maker = NoiseMaker(grid_dir.parent, voices)
    for kind in KINDS:
        first, again = (maker.make(kind, 8000, np.random.default_rng(1)) for _ in range(2))
        assert first.shape == (8000,) and np.isfinite(first).all(), kind
        assert float(np.mean(first**2)) == pytest.approx(1.0, rel=1e-3) and np.array_equal(first, again), kind
    with pytest.raises(ValueError, match="unknown noise kind"):
        maker.make("hairdryer", 100, np.random.default_rng(0))
    from benchmarks.quality.enhance_real import noise_kinds

    assert noise_kinds(["real", "tuning", "white"]) == ["real", "real1", "real2", "real3", "white", "hum", "crowd"]
    with pytest.raises(SystemExit, match="unknown noise kind\\(s\\) hairdryer"):
        noise_kinds(["hairdryer"])


def test_quality_vs_calls_budgets_and_paired_tables():
    """Each sampler gets the most levels its budget pays for; tables compare clips every system ran."""
    from benchmarks.common.run_specs import parse_run_spec
    from benchmarks.quality.quality_vs_calls import common_items, levels_for, paired_summary, paired_table

    assert levels_for("predictor_corrector", {}, 12) == 6  # 2 calls per level
    assert levels_for("heun", {}, 12) == 6  # 2 per level - 1: 11 calls
    assert levels_for("dpmpp_2m", {"eta": 1.0}, 4) == 4 and levels_for("heun", {}, 1) == 1
    assert parse_run_spec("udiffse+:nmf_pass_updates=none,steps=12,sampler_eta=0.5") == (
        "udiffse+", {"nmf_pass_updates": None, "steps": 12, "sampler_eta": 0.5})
    rows = [{"system": s, "budget": b, "item": i, "wer": w} for s, b, i, w in (
        ("pc", 60, "a", 0.5), ("pc", 60, "b", 0.7), ("pc", 60, "c", 0.9),
        ("dpm", 8, "a", 0.4), ("dpm", 8, "b", 0.6))]
    assert {r["item"] for r in common_items(rows)} == {"a", "b"}
    table = paired_table(paired_summary(rows, "pc@60", ("wer",)), ("wer",))
    assert "| dpm | 8 | -0.100 ± 0.000 | 2 |" in table and "| pc | 60 | 0.000 ± 0.000 | 3 |" in table


def test_the_level_swap_keeps_one_envelopes_movements_and_the_others_level():
    import torch

    from benchmarks.quality.lips_matter import level_swapped

    movements = torch.tensor([[0.0, 1.0], [2.0, 5.0], [4.0, 3.0]])
    level = torch.tensor([[10.0, -1.0], [12.0, -3.0], [14.0, -5.0]])
    swapped = level_swapped(movements, level)
    torch.testing.assert_close(swapped.mean(0), level.mean(0))
    torch.testing.assert_close(swapped - swapped.mean(0), movements - movements.mean(0))


def test_the_letter_ceilings_video_rate_holds_each_video_frames_mean_over_its_stft_frames():
    import torch

    from benchmarks.quality.letter_ceiling import video_rate

    envelope = torch.arange(12.0).reshape(1, 1, 12)  # 12 STFT frames: video frames of 5, 5 and 2
    held = video_rate(envelope)[0, 0]
    assert held.shape == (12,)
    torch.testing.assert_close(held, torch.tensor([2.0] * 5 + [7.0] * 5 + [10.5] * 2))


def test_unreliable_lips_pairs_each_share_with_audio_only_at_its_own_snr():
    """Rows at two SNRs: each difference pairs a mixture with its own audio-only run, so a fully
    masked video (which is audio-only) differs by exactly 0 at both."""
    from benchmarks.quality.unreliable_lips import summary_numbers

    rows = []
    for snr, level in ((0.0, 1.0), (-5.0, -4.0)):
        for item, offset in (("a", 0.0), ("b", 2.0)):
            base = {"noise": "babble", "snr": snr, "item": item, "estoi": 0.5, "usable": 1.0}
            rows += [{**base, "system": "audio-only", "share": 0.0, "si_sdr": level + offset},
                     {**base, "system": "intact", "share": 0.0, "si_sdr": level + offset + 1.5},
                     {**base, "system": "masked", "share": 1.0, "si_sdr": level + offset, "usable": 0.0}]
    numbers = {(e["snr"], e["share"]): e["delta_si_sdr"] for e in summary_numbers(rows)}
    assert set(numbers) == {(0.0, 0.0), (0.0, 1.0), (-5.0, 0.0), (-5.0, 1.0)}
    for snr in (0.0, -5.0):
        assert numbers[(snr, 1.0)]["mean"] == pytest.approx(0.0) and numbers[(snr, 1.0)]["n"] == 2
        assert numbers[(snr, 0.0)]["mean"] == pytest.approx(1.5)


def test_agreement_probe_finds_the_lag_at_which_the_lips_are_in_step():
    """Lips delayed by 4 frames correlate fully at lag 4, not at 0; the summary keeps own and other apart."""
    import argparse

    import numpy as np

    from benchmarks.quality.agreement_probe import lagged_correlations, summary, summary_numbers

    heard = np.random.default_rng(0).standard_normal((80, 3))
    lips = heard[np.clip(np.arange(80) + 4, 0, 79)]  # the lips run 4 frames ahead of the sound
    curves = lagged_correlations(lips, heard, 25, [0, 4, -4])
    assert np.median(curves[1]) == pytest.approx(1.0) and abs(float(np.median(curves[0]))) < 0.3
    args = argparse.Namespace(noises=["babble"], snrs=[0.0], detrend=13, window=3.0, null_lags=[6, 20])
    rows = [{"lips": lips_kind, "noise": "babble", "snr": 0.0, **{m: value for m in ("zero", "zero_p10", "zero_p90",
             "null", "contrast", "z")}} for lips_kind, value in (("own", 0.5), ("own", 0.7), ("other", 0.0))]
    numbers = summary_numbers(rows, args)
    assert [(row["lips"], row["zero"]["mean"], row["zero"]["n"]) for row in numbers] == [("own", 0.6, 2), ("other", 0.0, 1)]
    assert "| own | babble | 0 |" in summary(numbers, args)


def test_onnx_runtime_pipelines_load_in_float32_unless_told():
    """On CPUs with native bf16 the default dtype is bfloat16, which ONNX Runtime does not run: a
    harness's `backend=onnxruntime` system would otherwise run torch without saying so."""
    from benchmarks.common.engines import PipelinesByEngine

    assert PipelinesByEngine("m").dtype_for("onnxruntime") == "float32"
    assert PipelinesByEngine("m").dtype_for("torch") is None
    assert PipelinesByEngine("m", "bfloat16").dtype_for("onnxruntime") == "bfloat16"
