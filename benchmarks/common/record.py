"""`record()`: what produced a result, written beside it as OUTPUT/record.json.

Every benchmark script calls it once its figures are in: the command, its arguments (and
PYTHONPATH or CUDA_VISIBLE_DEVICES where set), the code (`git describe --always --dirty`), the
machine (`machine.describe_machine`: CPU, cores, native bf16, memory, load, GPUs, threads and
OpenMP settings), the versions of python, avdiff, torch and the other libraries (as `avdiff env`
reports them), the time, and a small summary of the results. A table in BENCHMARKS.md
cites the record it came from; records worth keeping are copied to benchmarks/records/<name>.json
and committed (the run folders under benchmarks/results/ are not).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from avdiff.environment import versions
from benchmarks.common.machine import describe_machine
from benchmarks.common.paths import REPO_ROOT

RECORD_NAME = "record.json"
ENVIRONMENT = ("PYTHONPATH", "CUDA_VISIBLE_DEVICES")  # kept when set (OpenMP's settings are in the machine's)


def git_describe(repo: Path = REPO_ROOT) -> str:
    """`git describe --always --dirty` of the checkout the script ran from ('unknown' without git)."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=repo, capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def jsonable(value: Any) -> Any:
    """Paths, tuples and other values of parsed arguments as JSON values (str() for the rest)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(item) for item in value]
    return str(value)


def command_line() -> str:
    """The command as typed: `python -m MODULE ARGS` for a module run, else `python SCRIPT ARGS`."""
    import shlex

    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    start = ["python", "-m", spec.name] if spec is not None else ["python", *sys.argv[:1]]
    return shlex.join([*start, *sys.argv[1:]])


def provenance(args: argparse.Namespace | dict) -> dict[str, Any]:
    """The run's description: command line, arguments, environment, commit, machine, versions, UTC time."""
    arguments = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return {
        "command": command_line(),
        "arguments": jsonable(arguments),
        "environment": {name: os.environ[name] for name in ENVIRONMENT if name in os.environ},
        "commit": git_describe(),
        "machine": describe_machine(),
        "versions": versions(),  # python, avdiff (with its folder), torch and the other libraries, as `avdiff env`
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def record(output: Path, args: argparse.Namespace | dict, results: Any) -> Path:
    """Write OUTPUT/record.json: {"run": provenance(args), "results": results}; returns its path."""
    output.mkdir(parents=True, exist_ok=True)
    path = output / RECORD_NAME
    path.write_text(json.dumps({"run": provenance(args), "results": jsonable(results)}, indent=1,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"record: {path}", flush=True)
    return path


def read_record(path: Path) -> dict[str, Any]:
    """A record.json as written by `record()` (a folder: its record.json)."""
    path = path / RECORD_NAME if path.is_dir() else path
    return json.loads(path.read_text(encoding="utf-8"))
