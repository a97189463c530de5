"""Batch commands over two launched CPU processes (torchrun, as `accelerate launch` runs them on
GPUs): every output is written once, by one process, and equals the single-process result; one
merged report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from avdiff.processes import Processes, report_path
from badinputs import speech_like  # noqa: E402  (tests/ is on sys.path)

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_avdiff(args: list[str], processes: int) -> subprocess.CompletedProcess:
    """`python -m avdiff ARGS` in one process, or under torchrun with `processes` CPU processes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("WORLD_SIZE", None)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    result = subprocess.run([*launcher, "-m", "avdiff", *args], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_shares_are_disjoint_cover_everything_and_balance() -> None:
    items = list(range(11))
    shares = [Processes(rank, 3).share(items) for rank in range(3)]
    assert sorted(sum(shares, [])) == items
    assert [len(share) for share in shares] == [4, 4, 3]
    assert Processes().share(items) == items


def test_one_process_keeps_its_device_and_needs_no_report_files(tmp_path) -> None:
    assert Processes().device(None) is None and Processes().device("cpu") == "cpu"
    assert Processes(1, 2, local_rank=1).device("cuda") == "cuda:1"
    assert Processes().gather_reports(tmp_path, {"done": ["a"]}) == [{"done": ["a"]}]
    assert not list(tmp_path.iterdir())


def test_generate_over_two_processes_equals_one(random_pipeline, tmp_path) -> None:
    model = random_pipeline.save_pretrained(tmp_path / "model")
    videos = tmp_path / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(5):
        np.save(videos / f"clip{k}.npy", rng.integers(0, 256, (10 + 3 * k, 32, 32), dtype=np.uint8))
    common = ["generate", "--model", str(model), "--video", str(videos), "--steps", "2", "--device", "cpu"]
    run_avdiff([*common, "--output", str(tmp_path / "one")], processes=1)
    two = run_avdiff([*common, "--output", str(tmp_path / "two")], processes=2)
    one_files, two_files = folder_bytes(tmp_path / "one"), folder_bytes(tmp_path / "two")
    assert sorted(one_files) == sorted(two_files) == [*(f"clip{k}.wav" for k in range(5)), "generate_settings.yaml"]
    for name in one_files:
        assert one_files[name] == two_files[name], name
    assert two.stdout.count("5 written, 0 already there (skipped), 0 failed") == 1  # one merged report
    done_lines = [line for line in two.stdout.splitlines() if line.startswith("clip") and "network calls ->" in line]
    assert sorted(line.split(":")[0] for line in done_lines) == [f"clip{k}" for k in range(5)]  # each once
    assert not report_path(tmp_path / "two", 0).exists()
    again = run_avdiff([*common, "--output", str(tmp_path / "two")], processes=2)  # resumable: all skipped
    assert "0 written, 5 already there (skipped), 0 failed" in again.stdout


def test_prepare_over_two_processes_equals_one(tmp_path) -> None:
    raw = tmp_path / "raw"
    for speaker in range(3):
        (raw / f"spk{speaker}").mkdir(parents=True)
        for utt in range(2):
            sf.write(raw / f"spk{speaker}" / f"utt{utt}.wav", speech_like(1.0 + 0.2 * utt, seed=speaker * 10 + utt),
                     16000)
    sf.write(raw / "spk0" / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)  # rejected
    for processes, output in ((1, "one"), (2, "two")):
        result = subprocess.run(
            [*([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
               if processes > 1 else [sys.executable]),
             "-m", "avdiff", "prepare", "--layout", "speech", "--input", str(raw), "--output", str(tmp_path / output)],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)})
        assert result.returncode == 1, result.stdout + result.stderr  # 1: an item was rejected
        assert result.stdout.count("prepared 6, skipped 0 (already done), rejected 1") == 1, result.stdout
    one, two = folder_bytes(tmp_path / "one"), folder_bytes(tmp_path / "two")
    one.pop(".avdiff-prepare.lock", None), two.pop(".avdiff-prepare.lock", None)
    assert sorted(one) == sorted(two)
    assert all(one[name] == two[name] for name in one if name != "rejects.jsonl")
    assert "silent" in two["rejects.jsonl"].decode() and len(two["rejects.jsonl"].splitlines()) == 1
    assert not [name for name in two if ".part" in name]
