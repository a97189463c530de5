"""The visual front-end of lip reading: a 3D-convolution stem and a per-frame ResNet-18 trunk.

This is the front-end of Stafylakis & Tzimiropoulos (2017) as used by Ma et al.'s
auto_avsr and by AV-HuBERT: Conv3d(1->64, kernel 5x7x7, stride 1x2x2) + BatchNorm + activation
+ spatial max-pool, then a 2D ResNet-18 applied to every frame and global average pooling, one
feature vector per frame. Module names follow theirs (`frontend3D.0` the Conv3d, `frontend3D.1`
its BatchNorm, `trunk.layer1.0.conv1`, `...bn1`, `...downsample.0/1`), so their visual
front-end weights load without renaming (see `LipEncoder.load_frontend_weights`).

Frames can be masked out (padding, or frames the caller wants ignored): their input is zeroed
before the stem, which is then the same as the stem's own zero padding at a clip's ends, and
everything after the stem runs on the kept frames only (batch statistics never see padding).
So a kept frame's output depends only on kept frames within two frames of it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Swish(nn.Module):
    """x * sigmoid(x), auto_avsr's activation (parameter-free)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(x)


def make_activation(name: str, channels: int) -> nn.Module:
    """'swish' (auto_avsr), 'relu' or 'prelu' (with one slope per channel, as in their code)."""
    if name == "swish":
        return Swish()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "prelu":
        return nn.PReLU(num_parameters=channels)
    raise ValueError(f"unknown activation {name!r}; choose swish, relu or prelu")


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convolutions and a shortcut)."""

    def __init__(self, inplanes: int, planes: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = make_activation(activation, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = make_activation(activation, planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + residual)


class ResNetTrunk(nn.Module):
    """Four stages of basic blocks (ResNet-18: 2 each) and global average pooling."""

    def __init__(self, inplanes: int, channels: tuple[int, ...], blocks: tuple[int, ...], activation: str) -> None:
        super().__init__()
        if len(channels) != 4 or len(blocks) != 4:
            raise ValueError("the trunk has four stages: give four channel counts and four block counts")
        for index, (planes, count) in enumerate(zip(channels, blocks), start=1):
            stride = 1 if index == 1 else 2
            layers = []
            for b in range(count):
                layers.append(BasicBlock(inplanes, planes, stride if b == 0 else 1, activation))
                inplanes = planes
            setattr(self, f"layer{index}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_channels = inplanes

    def forward(self, x: Tensor) -> Tensor:
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
        return self.avgpool(x).flatten(1)


class VisualFrontend(nn.Module):
    """(B, T, H, W) normalised grayscale crops + (B, T) keep mask -> (B, T, C) per-frame features."""

    def __init__(self, stem_channels: int = 64, trunk_channels: tuple[int, ...] = (64, 128, 256, 512),
                 trunk_blocks: tuple[int, ...] = (2, 2, 2, 2), activation: str = "swish") -> None:
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, stem_channels, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(stem_channels),
            make_activation(activation, stem_channels),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        self.trunk = ResNetTrunk(stem_channels, tuple(trunk_channels), tuple(trunk_blocks), activation)
        self.out_channels = self.trunk.out_channels

    def forward(self, video: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, frames = video.shape[:2]
        if mask is None:
            mask = torch.ones(batch, frames, dtype=torch.bool, device=video.device)
        video = video * mask[:, :, None, None].to(video.dtype)
        x = self.frontend3D[0](video.unsqueeze(1))  # (B, C, T, H', W')
        x = x.transpose(1, 2)[mask]  # kept frames only: (N, C, H', W')
        out = video.new_zeros(batch, frames, self.out_channels)
        if x.shape[0] == 0:
            return out
        x = self.frontend3D[1](x.unsqueeze(2)).squeeze(2)  # BatchNorm3d on (N, C, 1, H', W')
        x = self.frontend3D[3](self.frontend3D[2](x).unsqueeze(2)).squeeze(2)
        out[mask] = self.trunk(x).to(out.dtype)
        return out
