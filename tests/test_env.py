"""`avdiff env`: what a bug report needs, as text and as JSON, from the registries themselves."""

from __future__ import annotations

import json
import subprocess
import sys

import avdiff.extension_points as extension_points
from avdiff.cli import main
from avdiff.environment import describe_environment
from avdiff.extension_points import EXTENSION_POINTS, ExtensionPoint, registry


def test_env_prints_versions_device_components_models_and_caches(capsys):
    assert main(["env"]) == 0
    text = capsys.readouterr().out
    for line in ("versions:", "- torch: ", "- diffusers: ", "- native_bf16: ", "- cuda_available: ",
                 "- torch_threads: ", "- samplers: dpmpp_2m, edm_stochastic", "- backbones: unet",
                 "- formulations: edm, ouve", "- landmark backends: dlib, face-alignment", "- layouts: folder, grid",
                 "plugins:", "- shipped: ", "- torch_hub: ", "- face_alignment_weights: "):
        assert line in text, line
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"versions", "machine", "device", "components", "plugins", "models", "caches"}
    assert info["components"]["samplers"] == registry("samplers").names()
    assert "udiffse+" in info["components"]["posterior methods"]
    assert isinstance(info["machine"]["native_bf16"], bool) and isinstance(info["plugins"], list)


def test_a_registry_that_cannot_be_imported_is_reported_not_raised(monkeypatch):
    broken = dict(EXTENSION_POINTS, nonsense=ExtensionPoint("avdiff.no_such_module", "THINGS"))
    monkeypatch.setattr(extension_points, "EXTENSION_POINTS", broken)
    components = describe_environment()["components"]
    assert components["nonsense"].startswith("unavailable (ModuleNotFoundError: ")
    assert components["backbones"] == ["unet"]


def test_env_lists_names_without_importing_torchs_model_libraries():
    """Listing the registries imports no diffusers: the built-in unet and formulations are registered
    by reference (avdiff.registry.Registry.register_lazy)."""
    code = ("import sys; from avdiff.environment import describe_environment; info = describe_environment(); "
            "print(info['components']['backbones'], sorted(m for m in sys.modules if m.startswith('diffusers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip() == "['unet'] []"
