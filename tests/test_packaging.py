"""A non-editable wheel carries the recipes: `avdiff config tiny` and the demo's default config work
from an installed wheel, run outside the repository; and an installed plug-in package (the
`avdiff.plugins` entry-point group) adds a backbone and a sampler to that installation's command line.
Both use one venv, built once for the module."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
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


# A plug-in package, as someone outside avdiff would write it: a sampler and a score network,
# registered when the `avdiff.plugins` entry point imports the module; and an entry point whose
# module does not exist, which must cost one warning line and nothing else.
PLUGIN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "avdiff-toy-plugin"
version = "0.1.0"

[project.entry-points."avdiff.plugins"]
toy = "avdiff_toy_plugin"
broken = "avdiff_toy_plugin_missing"

[tool.setuptools]
py-modules = ["avdiff_toy_plugin"]
"""
PLUGIN_MODULE = '''"""avdiff plug-in: the sampler toy_plugin_euler and the backbone toy_plugin_net."""
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from avdiff.diffusion import register_sampler
from avdiff.diffusion.samplers import CallCounter, SamplerOutput, Step, after_step, levels
from avdiff.models.backbones import register_backbone


@register_sampler("toy_plugin_euler", lambda steps, options: steps)
def sample_toy_plugin_euler(denoiser, x, sigmas, *, generators, callback=None, progress=False, shrink: float = 1.0):
    model = CallCounter(denoiser)
    for i, sigma, sigma_next in levels(sigmas, progress, "toy"):
        denoised = model(x, sigma)
        x = after_step(callback, Step(i, sigma, sigma_next, denoised + shrink * sigma_next * (x - denoised) / sigma,
                                      denoised))
    return SamplerOutput(x, model.calls)


@dataclass
class ToyPluginNetConfig:
    width: int = 4


class ToyPluginNet(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, cond_channels: int, width: int = 4):
        super().__init__()
        self.null = nn.Parameter(torch.zeros(cond_channels))
        self.cond = nn.Linear(cond_channels, width)
        self.out = nn.Conv2d(2 + width, 2, kernel_size=1)

    def forward(self, sample, noise_level, cond=None, cond_mask=None):
        batch, _, bins, frames = sample.shape
        nulled = self.null.view(1, -1, 1).expand(batch, -1, frames)
        if cond is not None:
            mask = torch.ones(batch, frames, dtype=torch.bool) if cond_mask is None else cond_mask.bool()
            nulled = torch.where(mask[:, None, :], cond, nulled)
        features = self.cond(nulled.transpose(1, 2)).transpose(1, 2)[:, :, None, :].expand(-1, -1, bins, -1)
        return self.out(torch.cat([sample, features], dim=1))


register_backbone("toy_plugin_net", ToyPluginNet, ToyPluginNetConfig)
'''


def _write_plugin_package(folder: Path) -> Path:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (folder / "avdiff_toy_plugin.py").write_text(PLUGIN_MODULE)
    return folder


@dataclass(frozen=True)
class InstalledWheel:
    """A fresh venv with the avdiff wheel and the toy plug-in package installed (not editable)."""

    root: Path
    python: Path
    site_packages: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> InstalledWheel:
    """Built once for this module: both wheels from one `pip wheel`, installed by one `pip install`."""
    missing = _wheel_backend_missing()
    if missing:
        pytest.skip(f"cannot build a wheel offline: {missing} (pip install -e '.[dev]' brings setuptools and wheel)")
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))

    # Build from a copy of the sources, so the repository gets no build/ or egg-info written into it.
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "avdiff", source / "avdiff", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    plugin = _write_plugin_package(root / "plugin")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", str(root / "dist"), str(source), str(plugin)], cwd=root, env=env)
    wheels = sorted(str(wheel) for wheel in (root / "dist").glob("*.whl"))

    # A fresh venv with the wheels alone; their dependencies (torch, ...) come from this environment
    # through a .pth line, which adds the folder but not the .pth files (the editable install) in it.
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root, env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", *wheels],
         cwd=root, env=env)
    site_packages = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              cwd=root, env=env).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "zz_avdiff_test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    (root / "elsewhere").mkdir()
    return InstalledWheel(root, python, site_packages, env)


def test_installed_wheel_has_the_packaged_configs(installed_wheel):
    python, site_packages, env = installed_wheel.python, installed_wheel.site_packages, installed_wheel.env
    outside = installed_wheel.root / "elsewhere"
    shown = _run([str(python), "-m", "avdiff", "config", "tiny"], cwd=outside, env=env).stdout
    assert f"resolved from {site_packages / 'avdiff' / 'configs' / 'tiny.yaml'}" in shown
    assert "crop_frames: 64" in shown
    chained = _run([str(python.parent / "avdiff"), "config", "synth-cpu"], cwd=outside, env=env).stdout
    assert f"base: {site_packages / 'avdiff' / 'configs' / 'tiny.yaml'}" in chained
    where = _run([str(python), "-c", "import avdiff, avdiff.demo.runner as r; print(avdiff.__file__); "
                  "print(r.DEFAULT_CONFIG); print(r.DEFAULT_CONFIG.is_file())"], cwd=outside, env=env)
    package_file, default_config, exists = where.stdout.splitlines()[:3]
    assert Path(package_file).is_relative_to(site_packages), package_file
    assert Path(default_config) == site_packages / "avdiff" / "configs" / "synth-cpu.yaml"
    assert exists == "True"
    assert not Path(default_config).resolve().is_relative_to(REPO_ROOT)


def test_an_installed_plug_in_package_extends_the_command_line(installed_wheel):
    """The plug-in's backbone is a valid `score_model.backbone` (built by --summary) and its sampler a
    `generate --sampler` choice that runs, with nothing imported by hand; its broken entry point costs
    one warning line. One process runs both commands through the installed avdiff's CLI."""
    outside = installed_wheel.root / "elsewhere"
    clip, wav = outside / "clip.npy", outside / "clip.wav"
    script = (
        "import sys, numpy as np; from avdiff.cli import main\n"
        f"np.save({str(clip)!r}, np.random.default_rng(0).integers(0, 255, (13, 40, 40), dtype=np.uint8))\n"
        "sys.exit(main(['config', 'tiny', '--set', 'score_model.backbone=toy_plugin_net', '--set', "
        "'score_model.options={width: 3}', '--set', 'sampler.name=toy_plugin_euler', '--summary']) or "
        f"main(['generate', '--model', {str(REPO_ROOT / 'tests' / 'data' / 'reference' / 'model')!r}, '--video', "
        f"{str(clip)!r}, '--output', {str(wav)!r}, '--sampler', 'toy_plugin_euler', '--steps', '2']))\n")
    result = _run([str(installed_wheel.python), "-c", script], cwd=outside, env=installed_wheel.env)
    assert "# score network (toy_plugin_net): 0.00 M parameters" in result.stdout
    assert "2 network calls" in result.stdout and wav.is_file()
    warnings = [line for line in result.stderr.splitlines() if "warning: plug-in" in line]
    assert warnings == ["avdiff: warning: plug-in 'broken' of package avdiff-toy-plugin not loaded: "
                        "ModuleNotFoundError: No module named 'avdiff_toy_plugin_missing'"]
