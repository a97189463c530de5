"""The lip encoder: mouth crops (B, T_v, H, W) at 25 fps -> embeddings (B, T_v, D), and their
exact x5 upsampling to the 125 Hz STFT frame rate that the score network is conditioned on.

Architecture: `VisualFrontend` (3D-conv stem + ResNet-18 trunk, one vector per frame, as in
auto_avsr / AV-HuBERT) -> linear -> `Conformer` (relative-position attention, no absolute
positions) -> linear to D. Presets: "tiny" (tests, CPU), "small" and "small-context" (CPU
models) and "base" (full size: ResNet-18, 6 Conformer blocks of width 256, about 20 M
parameters, 11 M of them the front-end).

Pixel normalisation happens HERE, in `forward`: uint8 crops are divided by 255, float crops
must already be in [0, 1]; then (x - 0.421) / 0.165 (the mean / std of LRS3 mouth crops used
by AV-HuBERT and AV-UDiffSE; config keys `pixel_mean`, `pixel_std`). Callers pass raw crops.

Alignment to the STFT (see `upsample_to_stft`): STFT frames are centred (torch.stft
center=True, hop 128 at 16 kHz), so STFT frame k is centred on sample 128 k, inside video
frame floor(k / 5) (frame j covers samples [640 j, 640 j + 640)). A clip of T_v frames has
T_stft = 5 T_v + 1 STFT frames; the last one (centred on the clip's end) uses frame T_v - 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avdiff.diffusers_parts import ConfigMixin, register_to_config
from avdiff.errors import InputError
from avdiff.models.lip_frontend import VisualFrontend
from avdiff.models.loading import LeanModelMixin
from avdiff.models.lip_temporal import Conformer
from avdiff.timegrid import STFT_FRAMES_PER_VIDEO_FRAME

LIP_ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(stem_channels=8, trunk_channels=(8, 16, 16, 32), trunk_blocks=(1, 1, 1, 1),
                 model_dim=32, num_layers=1, num_heads=2, ff_mult=2, conv_kernel_size=5,
                 max_relative_distance=8, dropout=0.0, output_dim=64),
    # 4x the tiny trunk's width, two Conformer layers, wider context: trained alone on the envelope it
    # predicts it better than tiny in equal time (BENCHMARKS.md, "The lips matter").
    "small": dict(stem_channels=16, trunk_channels=(16, 32, 64, 64), trunk_blocks=(1, 1, 1, 1),
                  model_dim=64, num_layers=2, num_heads=4, ff_mult=2, conv_kernel_size=9,
                  max_relative_distance=16, dropout=0.0, output_dim=64),
    # small's front-end under a Conformer twice as wide and deep that sees 1.3 s around each frame: with the
    # phone loss it predicts the envelope's fast movements (the letters) better (BENCHMARKS.md, "Lips that
    # name the phonemes"); its front-end can come frozen from a small encoder (lip_encoder.pretrained_frontend).
    "small-context": dict(stem_channels=16, trunk_channels=(16, 32, 64, 64), trunk_blocks=(1, 1, 1, 1),
                          model_dim=128, num_layers=4, num_heads=4, ff_mult=2, conv_kernel_size=9,
                          max_relative_distance=32, dropout=0.0, output_dim=64),
    "base": dict(stem_channels=64, trunk_channels=(64, 128, 256, 512), trunk_blocks=(2, 2, 2, 2),
                 model_dim=256, num_layers=6, num_heads=4, ff_mult=4, conv_kernel_size=15,
                 max_relative_distance=32, dropout=0.1, output_dim=256),
}


class LipEncoder(LeanModelMixin, ConfigMixin):
    """Mouth-crop video (B, T_v, H, W) -> per-frame lip embeddings (B, T_v, output_dim)."""

    @register_to_config
    def __init__(self, stem_channels: int = 64, trunk_channels: tuple[int, ...] = (64, 128, 256, 512),
                 trunk_blocks: tuple[int, ...] = (2, 2, 2, 2), activation: str = "swish",
                 model_dim: int = 256, num_layers: int = 6, num_heads: int = 4, ff_mult: int = 4,
                 conv_kernel_size: int = 15, max_relative_distance: int = 32, dropout: float = 0.1,
                 output_dim: int = 256, pixel_mean: float = 0.421, pixel_std: float = 0.165,
                 freeze_frontend: bool = False, envelope_bands: int = 0) -> None:
        """`envelope_bands`: the first N output channels are trained to be a log-mel envelope
        (`avdiff.audio.envelope`); recorded so a saved encoder says what its channels mean."""
        super().__init__()
        if not 0 <= envelope_bands <= output_dim:
            raise ValueError(f"envelope_bands ({envelope_bands}) must be in 0 .. output_dim ({output_dim})")
        self.frontend = VisualFrontend(stem_channels, tuple(trunk_channels), tuple(trunk_blocks), activation)
        self.input_proj = nn.Linear(self.frontend.out_channels, model_dim)
        self.temporal = Conformer(model_dim, num_layers, num_heads, ff_mult, conv_kernel_size,
                                  max_relative_distance, dropout)
        self.output_proj = nn.Linear(model_dim, output_dim)
        if freeze_frontend:
            self._freeze_frontend()

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "LipEncoder":
        """A new (randomly initialised) encoder from a preset (LIP_ENCODER_PRESETS) plus overrides."""
        if name not in LIP_ENCODER_PRESETS:
            raise InputError(f"unknown lip encoder preset {name!r}; choose {', '.join(LIP_ENCODER_PRESETS)}")
        return cls(**{**LIP_ENCODER_PRESETS[name], **overrides})

    # -- front-end weights and freezing -------------------------------------------------------
    def _freeze_frontend(self) -> None:
        for parameter in self.frontend.parameters():
            parameter.requires_grad_(False)
        self.frontend.eval()

    def train(self, mode: bool = True) -> "LipEncoder":
        """As nn.Module.train, but what is frozen stays in eval mode (fixed BatchNorm statistics, no
        dropout): the front-end when it is frozen, the whole encoder when nothing of it trains."""
        super().train(mode)
        if not any(parameter.requires_grad for parameter in self.parameters()):
            super().train(False)
        elif self.config.freeze_frontend:
            self.frontend.eval()
        return self

    def freeze_frontend(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the visual front-end; recorded in the config so it is saved."""
        self.register_to_config(freeze_frontend=frozen)
        if frozen:
            self._freeze_frontend()
        else:
            for parameter in self.frontend.parameters():
                parameter.requires_grad_(True)
            self.frontend.train(self.training)

    def load_frontend_weights(self, path: str | Path, freeze: bool = True, prefix: str | None = None) -> list[str]:
        """Load a pretrained visual front-end from a local .safetensors or torch file.

        Expected key layout (auto_avsr / AV-HuBERT naming): `frontend3D.0.weight` (Conv3d
        1 -> stem, 5x7x7), `frontend3D.1.{weight,bias,running_mean,running_var}` (BatchNorm),
        `frontend3D.2.weight` only with PReLU, `trunk.layer{1-4}.{i}.{conv1,bn1,conv2,bn2}.*`,
        `trunk.layer{2-4}.0.downsample.{0,1}.*`. Any common prefix before `frontend3D.` (such
        as `encoder.frontend.` in auto_avsr checkpoints or `feature_extractor_video.resnet.`
        in AV-HuBERT ones) is found and stripped, or give it as `prefix`; a checkpoint dict
        holding the weights under "state_dict" or "model" is unwrapped. Torch files are read
        with weights_only=True (no pickle code runs). Shapes must match this encoder's
        `stem_channels` / `trunk_channels` / `trunk_blocks` / `activation`. Returns the keys
        loaded; raises InputError naming what is missing or mismatched.
        """
        state = _read_state_dict(Path(path))
        if prefix is None:
            anchors = [k[: -len("frontend3D.0.weight")] for k in state if k.endswith("frontend3D.0.weight")]
            if len(anchors) != 1:
                raise InputError(f"{path}: expected exactly one 'frontend3D.0.weight' key, found {len(anchors)}")
            prefix = anchors[0]
        wanted = {k[len(prefix):]: v for k, v in state.items()
                  if k.startswith(prefix) and k[len(prefix):].split(".")[0] in ("frontend3D", "trunk")}
        own = self.frontend.state_dict()
        missing = sorted(set(own) - set(wanted))
        unexpected = sorted(set(wanted) - set(own))
        wrong = [k for k in own if k in wanted and tuple(wanted[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or wrong:
            detail = "; ".join(part for part in (
                f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}" if missing else "",
                f"unexpected {', '.join(unexpected[:5])}" if unexpected else "",
                f"shape mismatch {', '.join(wrong[:5])}" if wrong else "") if part)
            raise InputError(f"{path}: not a visual front-end for this encoder ({detail})")
        self.frontend.load_state_dict(wanted, strict=True)
        if freeze:
            self.freeze_frontend(True)
        return sorted(wanted)

    # -- forward ------------------------------------------------------------------------------
    def normalise(self, video: Tensor) -> Tensor:
        """uint8 (0..255) or float (0..1) crops -> (x - pixel_mean) / pixel_std, float32."""
        x = video.float() / 255.0 if video.dtype == torch.uint8 else video.float()
        return (x - self.config.pixel_mean) / self.config.pixel_std

    def frontend_features(self, video: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        """Crops (B, T_v, H, W) -> the visual front-end's per-frame features (B, T_v, C): what the
        temporal part reads, and what `avdiff.data.frontend_cache` stores once for a frozen front-end."""
        return self.frontend(self.normalise(video).to(self.input_proj.weight.dtype), frame_mask)

    def forward(self, video: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        """Crops (B, T_v, H, W), or the front-end's features of them (B, T_v, C) computed once
        (`frontend_features`), and an optional (B, T_v) keep mask -> (B, T_v, output_dim).

        Frames where `frame_mask` is False (batch padding, frames to ignore) contribute nothing
        to the other frames and come out as zeros; the score network replaces them (and frames
        without a face) with its null embedding through `cond_mask`.
        """
        channels = self.frontend.out_channels
        if video.ndim not in (3, 4) or (video.ndim == 3 and video.shape[-1] != channels):
            raise ValueError(f"video must be crops (batch, frames, height, width) or front-end features (batch, "
                             f"frames, {channels}), got {tuple(video.shape)}")
        batch, frames = video.shape[:2]
        mask = (torch.ones(batch, frames, dtype=torch.bool, device=video.device)
                if frame_mask is None else frame_mask.to(device=video.device, dtype=torch.bool))
        if mask.shape != (batch, frames):
            raise ValueError(f"frame_mask must be ({batch}, {frames}), got {tuple(mask.shape)}")
        if video.ndim == 4:
            features = self.frontend_features(video, mask)
        else:  # cached features: a frame outside the mask reads zeros, as the front-end gives it
            features = video.to(self.input_proj.weight.dtype) * mask[..., None].to(self.input_proj.weight.dtype)
        hidden = self.temporal(self.input_proj(features), mask)
        return self.output_proj(hidden) * mask[..., None].to(hidden.dtype)


def lip_encoder_folder(path: str | Path) -> Path:
    """A lip encoder's folder from itself or from a model folder that holds one (`lip_encoder/`)."""
    folder = Path(path)
    return folder / "lip_encoder" if (folder / "lip_encoder" / "config.json").is_file() else folder


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors from a .safetensors file, or a torch file read with weights_only=True."""
    if not path.is_file():
        raise InputError(f"{path}: front-end weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable, or a pickle that weights_only refuses
        raise InputError(f"{path}: cannot read weights ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]})") from error
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError(f"{path}: expected a dict of tensors (a state dict)")
    return state


# -- video rate (25 Hz) -> STFT rate (125 Hz) --------------------------------------------------
def stft_frame_to_video_frame(num_stft_frames: int, num_video_frames: Tensor | int, offset: int = 0,
                              device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """For STFT frames offset..offset+num-1: the video frame each uses and whether it is covered.

    STFT frame k uses video frame floor(k / 5), clamped to [0, T_v - 1]; it is covered by the
    video when 0 <= k <= 5 T_v (k = 5 T_v, centred on the clip's last sample edge, clamps to the
    last frame). `num_video_frames` is an int or a (B,) tensor of per-item lengths.
    Returns index (B or 1, num) long and covered (B or 1, num) bool.
    """
    lengths = torch.as_tensor(num_video_frames, device=device).reshape(-1, 1).long()
    k = torch.arange(offset, offset + num_stft_frames, device=lengths.device).unsqueeze(0)
    index = torch.div(k, STFT_FRAMES_PER_VIDEO_FRAME, rounding_mode="floor")
    index = torch.minimum(index.clamp(min=0), (lengths - 1).clamp(min=0))
    covered = (k >= 0) & (k <= STFT_FRAMES_PER_VIDEO_FRAME * lengths)
    return index, covered


def upsample_to_stft(embeddings: Tensor, num_stft_frames: int, offset: int = 0,
                     lengths: Tensor | None = None) -> Tensor:
    """(B, T_v, D) lip embeddings -> (B, D, num_stft_frames) at 125 Hz, by exact x5 repetition.

    `offset` is the first STFT frame wanted (a training crop starting at STFT frame 256 passes
    offset=256); `lengths` (B,) gives each item's real T_v in a padded batch. Frames past the
    video are clamped to its last frame: pair with `upsample_mask` to mark them invalid.
    """
    batch, frames, dim = embeddings.shape
    index, _ = stft_frame_to_video_frame(num_stft_frames, frames if lengths is None else lengths,
                                         offset, device=embeddings.device)
    index = index.expand(batch, -1)
    gathered = torch.gather(embeddings, 1, index.unsqueeze(-1).expand(-1, -1, dim))
    return gathered.transpose(1, 2).contiguous()


def upsample_mask(frame_ok: Tensor, num_stft_frames: int, offset: int = 0,
                  lengths: Tensor | None = None) -> Tensor:
    """(B, T_v) per-video-frame validity (e.g. face_ok) -> (B, num_stft_frames) bool, True = valid.

    Same frame mapping as `upsample_to_stft`; STFT frames the video does not cover are False.
    """
    batch, frames = frame_ok.shape
    index, covered = stft_frame_to_video_frame(num_stft_frames, frames if lengths is None else lengths,
                                               offset, device=frame_ok.device)
    ok = torch.gather(frame_ok.bool(), 1, index.expand(batch, -1))
    return ok & covered.expand(batch, -1)


def lips_to_condition(embeddings: Tensor, frame_ok: Tensor, num_stft_frames: int) -> tuple[Tensor, Tensor]:
    """Lip embeddings (B, T_v, D) and per-video-frame usability (B, T_v) -> the score network's
    condition (B, D, T) and mask (B, T) on the STFT grid (the backbone contract, see
    `avdiff.models.backbones`); training and the pipeline both turn lips into a condition here."""
    return upsample_to_stft(embeddings, num_stft_frames), upsample_mask(frame_ok, num_stft_frames)


def num_stft_frames(num_video_frames: int) -> int:
    """STFT frames (centred, hop 128 at 16 kHz) of a clip of T_v video frames: 5 T_v + 1."""
    return STFT_FRAMES_PER_VIDEO_FRAME * num_video_frames + 1
