"""Lip encoder: shapes, normalisation, masking, exact 25 -> 125 Hz alignment, save/load, weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from avdiff.errors import InputError
from avdiff.models.lip_encoder import (
    LIP_ENCODER_PRESETS,
    LipEncoder,
    num_stft_frames,
    stft_frame_to_video_frame,
    upsample_mask,
    upsample_to_stft,
)


@pytest.fixture(scope="module")
def encoder() -> LipEncoder:
    torch.manual_seed(0)
    return LipEncoder.from_preset("tiny").eval()


def _video(batch: int, frames: int, size: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, frames, size, size), generator=g, dtype=torch.uint8)


def test_output_shape_and_uint8_float_equivalence(encoder: LipEncoder) -> None:
    video = _video(2, 7)
    out = encoder(video)
    assert out.shape == (2, 7, LIP_ENCODER_PRESETS["tiny"]["output_dim"])
    torch.testing.assert_close(encoder(video.float() / 255.0), out, rtol=0, atol=1e-6)
    # The normalisation constants are the ones documented (mean 0.421, std 0.165).
    x = torch.full((1, 1, 2, 2), 0.421 + 0.165)
    torch.testing.assert_close(encoder.normalise(x), torch.ones_like(x))


def test_stft_frame_mapping_matches_sample_positions() -> None:
    """STFT frame k is centred on sample 128 k; it must use the video frame holding that sample."""
    t_v = 6
    index, covered = stft_frame_to_video_frame(num_stft_frames(t_v), t_v)
    for k in range(num_stft_frames(t_v)):
        sample = 128 * k
        assert index[0, k].item() == min(sample // 640, t_v - 1)
    assert covered.all() and num_stft_frames(t_v) == 31
    # Frames past the clip are clamped and marked uncovered; negative frames too.
    index, covered = stft_frame_to_video_frame(8, t_v, offset=28)
    assert index[0].tolist() == [5, 5, 5, 5, 5, 5, 5, 5]
    assert covered[0].tolist() == [True, True, True, False, False, False, False, False]
    _, covered = stft_frame_to_video_frame(3, t_v, offset=-2)
    assert covered[0].tolist() == [False, False, True]


def test_upsample_exact_repetition_and_crops() -> None:
    emb = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    up = upsample_to_stft(emb, num_stft_frames(4))
    assert up.shape == (2, 3, 21)
    for k in range(21):
        torch.testing.assert_close(up[:, :, k], emb[:, min(k // 5, 3), :], rtol=0, atol=0)
    # A crop (offset 7, length 9) is the same slice of the full upsampling.
    torch.testing.assert_close(upsample_to_stft(emb, 9, offset=7), up[:, :, 7:16], rtol=0, atol=0)
    # Per-item lengths in a padded batch: item 1 has 2 real frames.
    up_len = upsample_to_stft(emb, 21, lengths=torch.tensor([4, 2]))
    torch.testing.assert_close(up_len[1, :, 10:], emb[1, 1, :, None].expand(-1, 11), rtol=0, atol=0)
    mask = upsample_mask(torch.ones(2, 4, dtype=torch.bool), 21, lengths=torch.tensor([4, 2]))
    assert mask[0].all() and mask[1, :11].all() and not mask[1, 11:].any()


def test_face_ok_mask_upsampling() -> None:
    face_ok = torch.tensor([[True, False, True]])
    mask = upsample_mask(face_ok, num_stft_frames(3))
    assert mask.shape == (1, 16)
    assert mask[0].tolist() == [True] * 5 + [False] * 5 + [True] * 6


@pytest.mark.parametrize("shift", [1, 3])
def test_shifting_video_shifts_upsampled_output_by_5k(encoder: LipEncoder, shift: int) -> None:
    """The whole encoder + upsampler: k masked frames in front shift the output by exactly 5k.

    Exact because nothing in the encoder depends on absolute position (relative-position
    attention, masked keys, zeroed frames before temporal convolutions, per-frame LayerNorm,
    eval-mode BatchNorm on kept frames only). The filler frames hold random pixels (not zeros)
    to show that masking, not luck, removes them.
    """
    t_v = 9
    video = _video(1, t_v, seed=1)
    filler = _video(1, shift, seed=2)
    shifted = torch.cat([filler, video], dim=1)
    keep = torch.ones(1, t_v + shift, dtype=torch.bool)
    keep[:, :shift] = False
    with torch.no_grad():
        ref = upsample_to_stft(encoder(video), num_stft_frames(t_v))
        out = upsample_to_stft(encoder(shifted, frame_mask=keep), num_stft_frames(t_v + shift))
    assert out.shape[-1] == ref.shape[-1] + 5 * shift
    torch.testing.assert_close(out[..., 5 * shift:], ref, rtol=0, atol=1e-5)
    # Any other offset does not match: the comparison above can fail.
    assert not torch.allclose(out[..., 5 * shift - 1:-1], ref, atol=1e-3)
    # The mask (e.g. face_ok) shifts the same way.
    ok = upsample_mask(keep, num_stft_frames(t_v + shift))
    assert not ok[0, :5 * shift].any() and ok[0, 5 * shift:].all()


def test_masked_frames_do_not_leak_and_are_zero(encoder: LipEncoder) -> None:
    video = _video(1, 8, seed=3)
    keep = torch.tensor([[True] * 5 + [False] * 3])
    other = video.clone()
    other[:, 5:] = 255 - other[:, 5:]
    with torch.no_grad():
        a, b = encoder(video, keep), encoder(other, keep)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert torch.count_nonzero(a[:, 5:]) == 0 and torch.count_nonzero(a[:, :5]) > 0
    # Without the mask the changed frames do change the kept ones (the model sees context).
    with torch.no_grad():
        assert not torch.allclose(encoder(video)[:, :5], encoder(other)[:, :5], atol=1e-4)


def test_save_load_roundtrip(encoder: LipEncoder, tmp_path) -> None:
    encoder.save_pretrained(tmp_path / "lip_encoder")
    assert (tmp_path / "lip_encoder" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = LipEncoder.from_pretrained(tmp_path / "lip_encoder").eval()
    video = _video(1, 5, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(video), encoder(video), rtol=0, atol=0)


def _frontend_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    donor = LipEncoder.from_preset("tiny")
    return {k: v.clone() for k, v in donor.frontend.state_dict().items()}


@pytest.mark.parametrize("fmt", ["safetensors", "torch"])
def test_load_frontend_weights_with_prefix_and_freeze(tmp_path, fmt: str) -> None:
    state = _frontend_state(7)
    prefixed = {f"encoder.frontend.{k}": v for k, v in state.items()}
    prefixed["decoder.embed.weight"] = torch.zeros(3, 3)  # unrelated keys are ignored
    if fmt == "safetensors":
        path = tmp_path / "frontend.safetensors"
        save_file(prefixed, str(path))
    else:
        path = tmp_path / "frontend.pth"
        torch.save({"state_dict": prefixed}, path)
    model = LipEncoder.from_preset("tiny")
    loaded = model.load_frontend_weights(path, freeze=True)
    assert "frontend3D.0.weight" in loaded and "trunk.layer1.0.conv1.weight" in loaded
    for key, value in state.items():
        torch.testing.assert_close(model.frontend.state_dict()[key], value, rtol=0, atol=0)
    assert not any(p.requires_grad for p in model.frontend.parameters())
    assert all(p.requires_grad for p in model.temporal.parameters())
    model.train()
    assert not model.frontend.training and model.temporal.training
    assert model.config.freeze_frontend is True
    # A frozen front-end gets no gradient; the rest does.
    model(_video(1, 4)).sum().backward()
    assert all(p.grad is None for p in model.frontend.parameters())
    assert model.output_proj.weight.grad is not None


def test_load_frontend_weights_rejects_mismatch(tmp_path) -> None:
    state = _frontend_state(8)
    state.pop("trunk.layer2.0.conv1.weight")
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(InputError, match="missing trunk.layer2.0.conv1.weight"):
        LipEncoder.from_preset("tiny").load_frontend_weights(path)
    with pytest.raises(InputError, match="shape mismatch"):
        LipEncoder.from_preset("tiny", stem_channels=16).load_frontend_weights(
            _save(tmp_path / "ok.safetensors", _frontend_state(9)))
    with pytest.raises(InputError, match="not found"):
        LipEncoder.from_preset("tiny").load_frontend_weights(tmp_path / "nope.pth")


def _save(path, state):
    save_file(state, str(path))
    return path


def test_presets_and_base_shape() -> None:
    with pytest.raises(InputError, match="unknown lip encoder preset"):
        LipEncoder.from_preset("huge")
    base = LipEncoder.from_preset("base").eval()
    assert base.frontend.out_channels == 512  # ResNet-18 trunk
    with torch.no_grad():
        out = base(_video(1, 3, size=88))
    assert out.shape == (1, 3, 256)
