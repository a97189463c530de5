"""Configs: strict loading, --set overrides, clear errors, commented files, resolved dumps."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from avdiff.config import AVDiffConfig, dump_yaml, load_config, save_config, to_dict
from avdiff.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_key_file_and_allowed_keys(tmp_path):
    path = write(tmp_path, "sampler:\n  stepz: 10\n")
    with pytest.raises(ConfigError) as info:
        load_config(AVDiffConfig, path)
    message = str(info.value)
    assert "'sampler.stepz'" in message
    assert str(path) in message
    assert "steps" in message and "guidance_scale" in message  # the allowed keys
    assert "Did you mean 'steps'" in message


def test_unknown_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'samplr'.*Allowed keys here: data, diffusion"):
        load_config(AVDiffConfig, write(tmp_path, "samplr: {}\n"))


def test_wrong_types_are_errors_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'sampler.steps' expects int, got str 'many'"):
        load_config(AVDiffConfig, write(tmp_path, "sampler:\n  steps: many\n"))
    with pytest.raises(ConfigError, match=r"'spectrogram.center' expects bool"):
        load_config(AVDiffConfig, write(tmp_path, "spectrogram:\n  center: 1\n"))
    with pytest.raises(ConfigError, match=r"'diffusion.formulation' expects 'edm' \| 'ouve'"):
        load_config(AVDiffConfig, write(tmp_path, "diffusion:\n  formulation: vp\n"))
    with pytest.raises(ConfigError, match=r"'score_model.block_out_channels\[1\]' expects int"):
        load_config(AVDiffConfig, write(tmp_path, "score_model:\n  block_out_channels: [8, x]\n"))


def test_int_is_accepted_for_float_and_lists_become_tuples(tmp_path):
    config = load_config(AVDiffConfig, write(tmp_path, "sampler:\n  snr: 1\n"))
    assert config.sampler.snr == 1.0 and isinstance(config.sampler.snr, float)
    # PyYAML reads 1e-4 as a string (YAML 1.1); a float key still takes it.
    config = load_config(AVDiffConfig, write(tmp_path, "training:\n  learning_rate: 1e-4\n"), ["sampler.snr=2e-1"])
    assert config.training.learning_rate == 1e-4 and config.sampler.snr == 0.2
    with pytest.raises(ConfigError, match="expects float, got str 'fast'"):
        load_config(AVDiffConfig, None, ["sampler.snr=fast"])
    assert isinstance(config.score_model.block_out_channels, tuple)


def test_set_overrides_apply_and_are_validated(tmp_path):
    path = write(tmp_path, "sampler:\n  steps: 10\n")
    config = load_config(AVDiffConfig, path, ["sampler.steps=25", "diffusion.sigma_data=0.2", "sampler.name=heun"])
    assert config.sampler.steps == 25
    assert config.diffusion.sigma_data == 0.2
    assert config.sampler.name == "heun"
    with pytest.raises(ConfigError, match=r"--set sampler.stepz=3: unknown key 'sampler.stepz'"):
        load_config(AVDiffConfig, path, ["sampler.stepz=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(AVDiffConfig, path, ["sampler.steps"])
    with pytest.raises(ConfigError, match="'sampler.steps' is a value, not a section"):
        load_config(AVDiffConfig, path, ["sampler.steps.x=1"])


def test_invalid_values_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        load_config(AVDiffConfig, None, ["sampler.steps=0"])
    with pytest.raises(ConfigError, match="one flag per level"):
        load_config(AVDiffConfig, None, ["score_model.attention_levels=[true]"])
    with pytest.raises(ConfigError, match="attention_head_dim=24 must divide"):
        load_config(AVDiffConfig, None, ["score_model.attention_head_dim=24"])


def test_dump_round_trips_and_comments_every_key(tmp_path):
    config = load_config(AVDiffConfig, None, ["sampler.steps=7", "score_model.block_out_channels=[8, 16]",
                                               "score_model.attention_levels=[false, true]",
                                               "score_model.attention_head_dim=8"])
    path = save_config(config, tmp_path / "out" / "config.yaml", header="test")
    assert load_config(AVDiffConfig, path) == config
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^\s*\w+:", line):
            assert lines[index - 1].strip().startswith("#"), f"key without a comment: {line!r}"
    assert yaml.safe_load(dump_yaml(config)) == to_dict(config)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_comment_every_key(path):
    load_config(AVDiffConfig, path)
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z_]\w*:", line):
            commented = "#" in line or lines[index - 1].strip().startswith("#")
            assert commented, f"{path.name}: key without a comment: {line!r}"


def test_cli_config_prints_resolved_config_and_fails_on_unknown_key(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "avdiff", "config", str(CONFIG_DIR / "tiny.yaml"),
                         "--set", "sampler.steps=12", "--output", str(tmp_path / "r.yaml")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "steps: 12" in ok.stdout
    assert load_config(AVDiffConfig, tmp_path / "r.yaml").sampler.steps == 12
    bad = subprocess.run([sys.executable, "-m", "avdiff", "config", str(CONFIG_DIR / "tiny.yaml"),
                          "--set", "score_model.chanels=3"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "unknown key 'score_model.chanels'" in bad.stderr
    assert "Traceback" not in bad.stderr
