"""What `avdiff env` reports: versions, platform, device, threads, registered components, plug-ins,
shipped models and caches, as one JSON-able mapping and as plain text for a bug report.

Every probe is cheap and never fails: what cannot be read is reported as such. Versions come from
the installed distributions' metadata (nothing is imported to learn them), so only torch (for
the device and threads) and the registries' own modules are imported.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import avdiff

# Shown name -> the distribution names it is published under (the first installed one is reported).
PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",), "torchaudio": ("torchaudio",), "diffusers": ("diffusers",),
    "accelerate": ("accelerate",), "numpy": ("numpy",), "safetensors": ("safetensors",),
    "gradio": ("gradio",), "pocketsphinx": ("pocketsphinx",), "faster-whisper": ("faster-whisper",),
    "face-alignment": ("face-alignment", "face_alignment"), "dlib": ("dlib", "dlib-bin"),
    "onnxruntime": ("onnxruntime",), "onnx": ("onnx",),
}
NOT_INSTALLED = "not installed"


def package_version(names: tuple[str, ...]) -> str:
    """The version of the first of `names` that is installed, or NOT_INSTALLED."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return NOT_INSTALLED


def versions() -> dict[str, str]:
    found = {"python": f"{platform.python_version()} ({sys.executable})",
             "avdiff": f"{avdiff.__version__} ({Path(avdiff.__file__).parent})"}
    found.update({shown: package_version(names) for shown, names in PACKAGES.items()})
    return found


def machine() -> dict[str, Any]:
    from avdiff.cpu import cpu_has_native_bf16, cpu_model

    return {"platform": platform.platform(), "cpu": cpu_model(), "logical_cores": os.cpu_count(),
            "native_bf16": cpu_has_native_bf16()}


def device_and_threads() -> dict[str, Any]:
    import torch

    from avdiff.inference import AUTO
    from avdiff.inference.runtime import choose_backend, default_dtype

    cuda = torch.cuda.is_available()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    device = torch.device("cuda" if cuda else "cpu")
    engine = choose_backend(AUTO, device, default_dtype(device))
    return {"cuda_available": cuda, "cuda_build": torch.version.cuda, "gpus": gpus,
            "default_dtype": str(default_dtype(device)).removeprefix("torch."),
            "score_network_engine": engine.name + (f" ({engine.note})" if engine.note else ""),
            "torch_threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


def components() -> dict[str, list[str] | str]:
    """The names in every registry (avdiff.extension_points), plug-ins' included; a registry
    whose module cannot be imported here says why."""
    from avdiff.extension_points import EXTENSION_POINTS, registry

    found: dict[str, list[str] | str] = {}
    for name in EXTENSION_POINTS:
        try:
            found[name] = registry(name).names()
        except Exception as error:  # noqa: BLE001 - a report, not a check: say what failed and go on
            found[name] = f"unavailable ({type(error).__name__}: {error})"
    return found


def plugins() -> list[dict[str, Any]]:
    from avdiff.plugins import load_plugins

    return [{"name": p.name, "value": p.value, "package": f"{p.package} {p.version}",
             "status": "loaded" if p.loaded else f"failed: {p.error}"} for p in load_plugins()]


def models() -> dict[str, Any]:
    from avdiff.pipeline.shipped import shipped_models_dir

    folder = shipped_models_dir()
    shipped = sorted(p.name for p in folder.glob("*") if (p / "avdiff_pipeline.json").is_file())
    return {"folder": str(folder), "AVDIFF_MODELS": os.environ.get("AVDIFF_MODELS"), "shipped": shipped}


def caches() -> dict[str, str]:
    from avdiff.landmarks.hub import default_weights_dir
    import torch

    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        HF_HUB_CACHE = NOT_INSTALLED
    from avdiff.inference.onnx_export import cache_folder

    return {"huggingface_hub": str(HF_HUB_CACHE), "torch_hub": torch.hub.get_dir(),
            "face_alignment_weights": str(default_weights_dir()), "exported_networks": str(cache_folder())}


SECTIONS = {"versions": versions, "machine": machine, "device": device_and_threads, "components": components,
            "plugins": plugins, "models": models, "caches": caches}


def describe_environment() -> dict[str, Any]:
    """Every section above, by name (the JSON of `avdiff env --json`)."""
    return {name: probe() for name, probe in SECTIONS.items()}


def format_environment(info: dict[str, Any]) -> str:
    """Plain text: one `- key: value` line per fact under a heading per section."""
    lines = ["avdiff environment (paste this into a bug report)"]
    for section, values in info.items():
        lines.append(f"\n{section}:")
        if section == "plugins":
            rows = {p["name"]: f"{p['value']} from {p['package']}: {p['status']}" for p in values}
            values = rows or {"(none)": "no package declares an avdiff.plugins entry point"}
        lines += [f"- {key}: {_plain(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return "not set" if value is None else str(value)
