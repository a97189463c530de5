"""Configs: strict loading, --set overrides, clear errors, commented files, resolved dumps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from avdiff.config import (
    PACKAGED_CONFIG_DIR,
    AVDiffConfig,
    dump_yaml,
    load_config,
    packaged_config,
    packaged_configs,
    read_config_chain,
    save_config,
    to_dict,
)
from avdiff.cli import main
from avdiff.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
RECIPES = ["lrs3", "ncsnpp", "speech-prior-cpu", "synth-cpu", "synth-gpu", "tcd-timit", "tiny",
           "v2s-budget-context-cpu", "v2s-budget-lips-cpu", "v2s-budget-score-cpu", "v2s-cpu",
           "v2s-fast-cpu", "v2s-lips-context-cpu", "v2s-lips-cpu", "v2s-score-context-cpu",
           "v2s-score-cpu", "vae-av-cpu", "vae-lrs3", "vae-speech-cpu"]


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
    with pytest.raises(ConfigError, match=r"section 'diffusion': formulation: unknown diffusion formulation 'vp'; "
                       r"registered: edm, ouve"):  # a name checked against the registry, not a Literal
        load_config(AVDiffConfig, write(tmp_path, "diffusion:\n  formulation: vp\n"))
    with pytest.raises(ConfigError, match=r"'score_model.unet.block_out_channels\[1\]' expects int"):
        load_config(AVDiffConfig, write(tmp_path, "score_model:\n  unet:\n    block_out_channels: [8, x]\n"))
    with pytest.raises(ConfigError, match=r"'sampler.options' expects dict\[str, Any\], got list"):
        load_config(AVDiffConfig, write(tmp_path, "sampler:\n  options: [1]\n"))
    with pytest.raises(ConfigError, match=r"'diffusion.sigma_data' expects float \| null, got str"):
        load_config(AVDiffConfig, write(tmp_path, "diffusion:\n  sigma_data: small\n"))


def test_int_is_accepted_for_float_and_lists_become_tuples(tmp_path):
    config = load_config(AVDiffConfig, write(tmp_path, "sampler:\n  guidance_scale: 2\n"))
    assert config.sampler.guidance_scale == 2.0 and isinstance(config.sampler.guidance_scale, float)
    # PyYAML reads 1e-4 as a string (YAML 1.1); a float key still takes it.
    config = load_config(AVDiffConfig, write(tmp_path, "training:\n  learning_rate: 1e-4\n"),
                         ["sampler.guidance_scale=2e-1"])
    assert config.training.learning_rate == 1e-4 and config.sampler.guidance_scale == 0.2
    with pytest.raises(ConfigError, match="expects float, got str 'fast'"):
        load_config(AVDiffConfig, None, ["sampler.guidance_scale=fast"])
    assert isinstance(config.score_model.unet.block_out_channels, tuple)
    assert load_config(AVDiffConfig, None, ["diffusion.sigma_data=1"]).diffusion.sigma_data == 1.0


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
        load_config(AVDiffConfig, None, ["score_model.unet.attention_levels=[true]"])
    with pytest.raises(ConfigError, match="attention_head_dim=24 must divide"):
        load_config(AVDiffConfig, None, ["score_model.unet.attention_head_dim=24"])


def test_dump_round_trips_and_comments_every_key(tmp_path):
    config = load_config(AVDiffConfig, None, ["sampler.steps=7", "score_model.unet.block_out_channels=[8, 16]",
                                               "score_model.unet.attention_levels=[false, true]",
                                               "score_model.unet.attention_head_dim=8",
                                               "sampler.options={snr: 0.3}"])
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


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """`avdiff ARGV` in this process (the CLI's own entry point, without a new interpreter's start-up)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_config_prints_resolved_config_and_fails_on_unknown_key(tmp_path, capsys):
    code, out, err = run_cli(capsys, "config", str(CONFIG_DIR / "tiny.yaml"), "--set", "sampler.steps=12",
                             "--output", str(tmp_path / "r.yaml"))
    assert code == 0, err
    assert "steps: 12" in out
    assert load_config(AVDiffConfig, tmp_path / "r.yaml").sampler.steps == 12
    code, out, err = run_cli(capsys, "config", str(CONFIG_DIR / "tiny.yaml"), "--set", "score_model.chanels=3")
    assert code == 2
    assert "unknown key 'score_model.chanels'" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- base: inheritance


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_child_keys_win_and_sections_merge(tmp_path):
    put(tmp_path / "parent.yaml", "training:\n  max_steps: 10\n  warmup_steps: 3\ndata:\n  crop_frames: 32\n")
    child = put(tmp_path / "child.yaml", "base: parent.yaml\ntraining:\n  max_steps: 20\nsampler:\n  steps: 5\n")
    config = load_config(AVDiffConfig, child)
    assert config.training.max_steps == 20  # the child wins
    assert config.training.warmup_steps == 3  # the rest of the parent's section stays
    assert config.data.crop_frames == 32  # sections the child does not name stay the parent's
    assert config.sampler.steps == 5
    assert config.training.learning_rate == AVDiffConfig().training.learning_rate  # then the defaults
    assert load_config(AVDiffConfig, child, ["training.max_steps=30"]).training.max_steps == 30  # --set last


def test_base_lists_and_options_are_replaced_not_merged(tmp_path):
    put(tmp_path / "parent.yaml", "score_model:\n  unet:\n    block_out_channels: [16, 32, 48]\n"
        "    attention_levels: [false, false, true]\n    attention_head_dim: 16\n"
        "sampler:\n  options: {snr: 0.3, corrector_steps: 2}\n")
    child = put(tmp_path / "child.yaml", "base: parent.yaml\nscore_model:\n  unet:\n"
                "    block_out_channels: [8, 16]\n    attention_levels: [false, true]\n"
                "sampler:\n  name: heun\n  options: {}\n")
    config = load_config(AVDiffConfig, child)
    assert config.score_model.unet.block_out_channels == (8, 16)
    assert config.score_model.unet.attention_levels == (False, True)
    assert config.score_model.unet.attention_head_dim == 16  # a sibling key still merges
    assert config.sampler.options == {}  # a new sampler does not inherit the old one's settings
    child.write_text("base: parent.yaml\nsampler:\n  options: {snr: 0.4}\n")
    assert load_config(AVDiffConfig, child).sampler.options == {"snr": 0.4}


def test_base_path_is_relative_to_the_file_that_names_it(tmp_path, monkeypatch):
    put(tmp_path / "bases" / "common.yaml", "training:\n  seed: 7\n")
    put(tmp_path / "recipes" / "mid.yaml", "base: ../bases/common.yaml\ntraining:\n  max_steps: 9\n")
    child = put(tmp_path / "recipes" / "deep" / "child.yaml", "base: ../mid.yaml\n")
    monkeypatch.chdir(tmp_path / "bases")  # nothing is relative to the working directory
    config = load_config(AVDiffConfig, child)
    assert (config.training.seed, config.training.max_steps) == (7, 9)
    files = [file for file, _ in read_config_chain(AVDiffConfig, child)]
    assert [f.resolve() for f in files] == [child, tmp_path / "recipes" / "mid.yaml",
                                            tmp_path / "bases" / "common.yaml"]


def test_base_can_be_a_packaged_name(tmp_path):
    child = put(tmp_path / "mine.yaml", "base: tiny\ntraining:\n  max_steps: 7\n")
    expected = to_dict(load_config(AVDiffConfig, "tiny"))
    expected["training"]["max_steps"] = 7
    assert to_dict(load_config(AVDiffConfig, child)) == expected


def test_base_cycle_is_an_error_naming_the_chain(tmp_path):
    a = put(tmp_path / "a.yaml", "base: b.yaml\n")
    b = put(tmp_path / "b.yaml", "base: ./a.yaml\n")
    with pytest.raises(ConfigError, match="cycle") as info:
        load_config(AVDiffConfig, a)
    assert f"{a} -> {b} -> {tmp_path / 'a.yaml'}" in str(info.value)
    put(tmp_path / "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(AVDiffConfig, tmp_path / "self.yaml")


def test_bad_key_in_a_base_is_blamed_on_the_base_file(tmp_path):
    parent = put(tmp_path / "sub" / "parent.yaml", "sampler:\n  stepz: 10\n")
    child = put(tmp_path / "child.yaml", "base: sub/parent.yaml\nsampler:\n  steps: 10\n")
    with pytest.raises(ConfigError) as info:
        load_config(AVDiffConfig, child)
    message = str(info.value)
    assert message.startswith(f"{parent}: unknown key 'sampler.stepz'"), message
    assert str(child) not in message
    parent.write_text("training:\n  max_steps: lots\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(parent))}: key 'training.max_steps' expects int"):
        load_config(AVDiffConfig, child)


def test_checks_between_keys_run_on_the_merged_config_and_name_the_chain(tmp_path):
    # A base alone may be incomplete: the child supplies the matching attention_levels.
    parent = put(tmp_path / "parent.yaml", "score_model:\n  unet:\n    block_out_channels: [8, 16]\n")
    child = put(tmp_path / "child.yaml", "base: parent.yaml\nscore_model:\n  unet:\n"
                "    attention_levels: [false, true]\n    attention_head_dim: 8\n")
    assert load_config(AVDiffConfig, child).score_model.unet.block_out_channels == (8, 16)
    child.write_text("base: parent.yaml\n")
    with pytest.raises(ConfigError, match="one flag per level") as info:
        load_config(AVDiffConfig, child)
    assert f"{child} (base {parent})" in str(info.value)


def test_bad_base_values_are_errors_naming_the_file(tmp_path):
    child = put(tmp_path / "child.yaml", "base: missing.yaml\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(child))}: base config 'missing.yaml' not found"):
        load_config(AVDiffConfig, child)
    child.write_text("base: [tiny]\n")
    with pytest.raises(ConfigError, match="'base' must be a packaged config name or a path"):
        load_config(AVDiffConfig, child)
    child.write_text("base: no-such-recipe\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(child))}: base: no packaged config named "
                       "'no-such-recipe'; packaged configs: lrs3"):
        load_config(AVDiffConfig, child)
    with pytest.raises(ConfigError, match="unknown key 'base'"):
        load_config(AVDiffConfig, None, ["base=tiny"])  # inheritance is a file's business, not --set's


# --------------------------------------------------------------------------- packaged recipes


def test_packaged_names_and_the_configs_symlink():
    assert packaged_configs() == RECIPES
    assert packaged_config("tiny") == PACKAGED_CONFIG_DIR / "tiny.yaml"
    assert PACKAGED_CONFIG_DIR == Path(__file__).resolve().parents[1] / "avdiff" / "configs"
    assert CONFIG_DIR.is_symlink() and CONFIG_DIR.resolve() == PACKAGED_CONFIG_DIR  # configs/*.yaml still work
    assert load_config(AVDiffConfig, "tiny") == load_config(AVDiffConfig, CONFIG_DIR / "tiny.yaml")
    assert load_config(AVDiffConfig, Path("synth-cpu")) == load_config(AVDiffConfig, CONFIG_DIR / "synth-cpu.yaml")
    with pytest.raises(ConfigError, match="no packaged config named 'tinny'.*tiny"):
        packaged_config("tinny")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(AVDiffConfig, "tiny.yaml")  # a .yaml name is a path (here: in the working directory)


@pytest.mark.parametrize("name", RECIPES)
def test_every_packaged_recipe_loads_from_bases_inside_the_package(name):
    config = load_config(AVDiffConfig, name)
    chain = read_config_chain(AVDiffConfig, name)
    assert all(file.resolve().parent == PACKAGED_CONFIG_DIR for file, _ in chain)
    assert config.lip_encoder.output_dim == config.score_model.cond_channels


def test_recipes_inherit_as_documented():
    tiny, cpu, ncsnpp, lrs3, timit = (load_config(AVDiffConfig, n)
                                      for n in ("tiny", "synth-cpu", "ncsnpp", "lrs3", "tcd-timit"))
    assert tiny.score_model == AVDiffConfig().score_model == cpu.score_model
    assert (tiny.data.crop_frames, tiny.training.max_steps, tiny.training.learning_rate) == (64, 100, 2e-4)
    assert (cpu.training.max_steps, cpu.training.learning_rate, cpu.training.validation_batches) == (600, 1e-3, 2)
    assert ncsnpp.score_model.unet.block_out_channels == (128, 128, 256, 256, 256, 256)
    assert ncsnpp.data == tiny.data and ncsnpp.training == tiny.training
    assert lrs3.score_model == ncsnpp.score_model == timit.score_model
    assert (timit.training.max_steps, timit.training.warmup_steps, timit.training.batch_size) == (100000, 2000, 16)
    assert timit.data.train_manifest == "data/tcd-timit/train.jsonl" and timit.data.crop_frames == 256


def test_demo_default_config_is_the_packaged_synth_cpu():
    from avdiff.demo.runner import DEFAULT_CONFIG

    assert DEFAULT_CONFIG == packaged_config("synth-cpu")


def test_cli_config_takes_a_packaged_name_and_names_the_chain_of_bases(capsys):
    code, out, err = run_cli(capsys, "config", "tcd-timit")
    assert code == 0, err
    header = [line for line in out.splitlines() if line.startswith("#")][:5]
    assert header == [f"# resolved from {PACKAGED_CONFIG_DIR / 'tcd-timit.yaml'}",
                      f"#   base: {PACKAGED_CONFIG_DIR / 'lrs3.yaml'}",
                      f"#   base: {PACKAGED_CONFIG_DIR / 'ncsnpp.yaml'}",
                      f"#   base: {PACKAGED_CONFIG_DIR / 'tiny.yaml'}",
                      "#   base: the built-in defaults (avdiff/config/schema.py)"]
    assert yaml.safe_load(out) == to_dict(load_config(AVDiffConfig, "tcd-timit"))
    code, out, err = run_cli(capsys, "config", "tcd")
    assert code == 2 and "no packaged config named 'tcd'" in err
