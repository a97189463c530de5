"""The `avdiff.plugins` entry-point group, in process: what loading does, once, and what a broken
plug-in costs (one warning line). tests/test_packaging.py installs a real plug-in package into a
venv and uses it from the command line."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest

import avdiff.plugins as plugins
from avdiff.config import AVDiffConfig, load_config
from avdiff.diffusion.samplers import SAMPLERS

PLUGIN_MODULE = '''
from avdiff.diffusion import register_sampler
from avdiff.diffusion.samplers import sample_heun

CALLS = []


def register():
    CALLS.append(1)
    register_sampler("plugin_heun", lambda steps, options: 2 * steps - 1)(sample_heun)
'''


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    """Plug-ins as `[(name, value)]` entry points of a module written to tmp_path, loaded afresh."""
    (tmp_path / "toy_avdiff_plugin.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_PLUGINS", None)

    def install(*pairs: tuple[str, str]) -> None:
        points = [EntryPoint(name, value, plugins.GROUP) for name, value in pairs]
        monkeypatch.setattr(plugins, "entry_points", lambda group: points if group == plugins.GROUP else [])

    yield install
    if "plugin_heun" in SAMPLERS:
        SAMPLERS.unregister("plugin_heun")
    sys.modules.pop("toy_avdiff_plugin", None)


def test_a_callable_plug_in_is_called_once_and_a_broken_one_is_one_warning_line(fake_entry_points, capsys):
    fake_entry_points(("toy", "toy_avdiff_plugin:register"), ("broken", "no_such_avdiff_plugin_module"))
    loaded = plugins.load_plugins()
    assert [(p.name, p.loaded) for p in loaded] == [("toy", True), ("broken", False)]
    assert "plugin_heun" in SAMPLERS
    warning = capsys.readouterr().err.strip().splitlines()
    assert warning == ["avdiff: warning: plug-in 'broken' of package no_such_avdiff_plugin_module not loaded: "
                       "ModuleNotFoundError: No module named 'no_such_avdiff_plugin_module'"]
    assert plugins.load_plugins() == loaded and sys.modules["toy_avdiff_plugin"].CALLS == [1]  # once
    assert capsys.readouterr().err == ""


def test_a_name_no_registry_holds_loads_the_plug_ins_first(fake_entry_points):
    """Config loading (and any registry lookup) finds a plug-in's name without loading plug-ins by hand."""
    fake_entry_points(("toy", "toy_avdiff_plugin:register"))
    assert "plugin_heun" not in SAMPLERS
    config = load_config(AVDiffConfig, None, ["sampler.name=plugin_heun"])
    assert config.sampler.name == "plugin_heun" and SAMPLERS.get("plugin_heun").network_calls(4, {}) == 7


def test_the_cli_loads_plug_ins_before_its_parser(fake_entry_points):
    from avdiff.cli import build_parser

    fake_entry_points(("toy", "toy_avdiff_plugin:register"))
    args = build_parser().parse_args(["generate", "--video", "x.npy", "--sampler", "plugin_heun"])
    assert args.sampler == "plugin_heun"
