"""A non-editable wheel carries the recipes: `avdiff config tiny` and the demo's default config work
from an installed wheel, run outside the repository."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _wheel_backend_missing() -> str | None:
    """Why this environment cannot build a wheel offline (no build isolation), or None."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed"
    import setuptools

    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2] if part.isdigit())
    if importlib.util.find_spec("wheel") is None and version < (70, 1):
        return f"setuptools {setuptools.__version__} needs the wheel package for bdist_wheel"
    return None


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_installed_wheel_has_the_packaged_configs(tmp_path):
    missing = _wheel_backend_missing()
    if missing:
        pytest.skip(f"cannot build a wheel offline: {missing} (pip install -e '.[dev]' brings setuptools and wheel)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))

    # Build from a copy of the sources, so the repository gets no build/ or egg-info written into it.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "avdiff", source / "avdiff", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", str(tmp_path / "dist"), str(source)], cwd=tmp_path, env=env)
    (wheel,) = (tmp_path / "dist").glob("avdiff-*.whl")

    # A fresh venv with the wheel alone; its dependencies (torch, ...) come from this environment
    # through a .pth line, which adds the folder but not the .pth files (the editable install) in it.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
         cwd=tmp_path, env=env)
    site_packages = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              cwd=tmp_path, env=env).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "zz_avdiff_test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shown = _run([str(python), "-m", "avdiff", "config", "tiny"], cwd=outside, env=env).stdout
    assert f"resolved from {site_packages / 'avdiff' / 'configs' / 'tiny.yaml'}" in shown
    assert "crop_frames: 64" in shown
    chained = _run([str(venv / "bin" / "avdiff"), "config", "synth-cpu"], cwd=outside, env=env).stdout
    assert f"base: {site_packages / 'avdiff' / 'configs' / 'tiny.yaml'}" in chained
    where = _run([str(python), "-c", "import avdiff, avdiff.demo.runner as r; print(avdiff.__file__); "
                  "print(r.DEFAULT_CONFIG); print(r.DEFAULT_CONFIG.is_file())"], cwd=outside, env=env)
    package_file, default_config, exists = where.stdout.splitlines()[:3]
    assert Path(package_file).is_relative_to(site_packages), package_file
    assert Path(default_config) == site_packages / "avdiff" / "configs" / "synth-cpu.yaml"
    assert exists == "True"
    assert not Path(default_config).resolve().is_relative_to(REPO_ROOT)
