"""Where the benchmarks find the repository, the shared real data and their default output folder."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # real GRID clips, speech and noise, beside the repository
RESULTS = REPO_ROOT / "benchmarks" / "results"  # run outputs (git-ignored); records worth keeping go to RECORDS
RECORDS = REPO_ROOT / "benchmarks" / "records"  # committed record.json copies that BENCHMARKS.md cites


def default_output(script: str) -> Path:
    """benchmarks/results/<script>: where a script writes when no --output is given."""
    return RESULTS / Path(script).stem.replace("_", "-")
