"""Render articulator trajectories as a grayscale mouth-region video (T x S x S uint8).

The mouth is drawn in a face-fixed frame whose unit is the speaker's mouth half-width (corners
at x = +-1, the lips meeting at y = 0, y pointing down), then mapped to the image through the
per-frame head pose (translation, roll, scale), so head motion moves the whole face, lips, nose
and chin together. Shapes are soft-edged (anti-aliased over about one pixel):
- inner lip contour: an aperture whose height is the jaw/lip opening, narrower and rounder when
  the lips round, flatter and wider when they spread; the lower lip travels further than the
  upper one (it rides on the jaw);
- lips: upper lip with a Cupid's bow, fuller lower lip with a specular highlight, thicker when
  protruded (rounding), thinner and pressed together for bilabial closure (a dark seam);
- inside the mouth: dark cavity, upper and lower teeth bands (visibility from `teeth`), the
  tongue tip (dentals, laterals), and for labiodentals the upper teeth resting on the raised,
  tucked-in lower lip;
- the face around: skin with a per-speaker texture, nostril shadows, philtrum, the chin
  crease and the chin's lower edge, which moves down as the jaw opens.
Lighting (gain, side-light gradient) drifts slowly; sensor noise is added last.
All frames are rendered at once with numpy (a 3 s clip takes a few tens of milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avdiff.synth.visemes import P


@dataclass(frozen=True)
class Appearance:
    """A speaker's fixed look (gray levels in [0, 1]; lengths in mouth half-widths unless noted)."""

    skin: float = 0.55  # skin gray level
    lip_contrast: float = 0.14  # how much darker the lips are than the skin
    upper_lip: float = 0.20  # upper lip height at the centre
    lower_lip: float = 0.28  # lower lip height at the centre
    mouth_width_px: float = 24.0  # mouth half-width in pixels (88-pixel frame)
    cupid_bow: float = 0.3  # depth of the dip in the upper lip's outer edge, fraction of its height
    max_open: float = 0.85  # inner aperture at full jaw opening
    teeth: float = 0.86  # teeth gray level
    cavity: float = 0.08  # gray level inside the mouth
    vertical_offset_px: float = 2.0  # mouth centre below the image centre
    texture_seed: int = 0  # skin texture pattern
    texture_amplitude: float = 0.025


@dataclass(frozen=True)
class Nuisance:
    """Per-frame head pose and lighting, shape (T,) each."""

    dx: np.ndarray  # pixels
    dy: np.ndarray  # pixels
    roll: np.ndarray  # radians
    scale: np.ndarray  # multiplies the mouth size
    gain: np.ndarray  # overall brightness factor
    side_light: np.ndarray  # left-right brightness gradient (fraction across the frame)


def smooth_noise(rng: np.random.Generator, num_frames: int, amplitude: float, cutoff_frames: float) -> np.ndarray:
    """Slowly varying random signal: white noise low-passed with a Gaussian kernel, scaled to `amplitude` std."""
    width = max(1.0, cutoff_frames)
    pad = int(3 * width)
    noise = rng.standard_normal(num_frames + 2 * pad)
    taps = np.exp(-0.5 * (np.arange(-pad, pad + 1) / width) ** 2)
    smooth = np.convolve(noise, taps / taps.sum(), mode="valid")[:num_frames]
    return (amplitude * smooth / (smooth.std() + 1e-9)).astype(np.float32) if num_frames > 1 else np.zeros(num_frames, np.float32)


def random_nuisance(rng: np.random.Generator, num_frames: int) -> Nuisance:
    """Small head motion (about +-2 px, +-3 degrees, +-3 % scale) and slow lighting changes."""
    return Nuisance(
        dx=smooth_noise(rng, num_frames, 1.2, 10) + rng.uniform(-2, 2),
        dy=smooth_noise(rng, num_frames, 0.9, 10) + rng.uniform(-2, 2),
        roll=smooth_noise(rng, num_frames, np.deg2rad(1.5), 14) + np.deg2rad(rng.uniform(-3, 3)),
        scale=1.0 + smooth_noise(rng, num_frames, 0.015, 14) + rng.uniform(-0.04, 0.04),
        gain=1.0 + smooth_noise(rng, num_frames, 0.03, 20) + rng.uniform(-0.12, 0.12),
        side_light=smooth_noise(rng, num_frames, 0.04, 25) + rng.uniform(-0.15, 0.15),
    )


def _soft(distance: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """Coverage of a region from a signed distance (positive inside), anti-aliased over one pixel."""
    return np.clip(distance / pixel + 0.5, 0.0, 1.0)


def _texture(appearance: Appearance, x: np.ndarray, y: np.ndarray, cos: np.ndarray, sin: np.ndarray,
             scale_px: np.ndarray) -> np.ndarray:
    """Skin texture fixed to the face: a sum of plane waves in face coordinates.

    `x` (T, 1, S) and `y` (T, S, 1) are pixel offsets from the face centre; each wave
    sin(a x + b y + phase) is expanded as sin(A) cos(B) + cos(A) sin(B) so only (T, S)-sized
    sines are evaluated.
    """
    rng = np.random.default_rng(appearance.texture_seed)
    out = np.zeros((x.shape[0], y.shape[1], x.shape[2]), np.float32)
    for _ in range(5):
        fu, fv = rng.uniform(1.5, 6.0, 2) * rng.choice([-1, 1], 2)
        a = x * ((fu * cos - fv * sin) / scale_px) + rng.uniform(0, 2 * np.pi)
        b = y * ((fu * sin + fv * cos) / scale_px)
        out += np.sin(a) * np.cos(b) + np.cos(a) * np.sin(b)
    return out * np.float32(appearance.texture_amplitude / np.sqrt(2.5))


def _col(values, num_frames: int) -> np.ndarray:
    """Per-frame values as float32 (T, 1, 1), to broadcast over the frames' pixels."""
    return np.asarray(values, np.float32).reshape(num_frames, 1, 1)


@dataclass(frozen=True)
class _Articulators:
    """The articulator values of every frame, float32 (T, 1, 1) each (names as in `visemes.P`)."""

    open: np.ndarray
    spread: np.ndarray
    round: np.ndarray
    teeth: np.ndarray
    tongue: np.ndarray
    labiodental: np.ndarray
    closure: np.ndarray

    @classmethod
    def from_params(cls, params: np.ndarray) -> _Articulators:
        """Pick the columns of a (T, len(PARAMETERS)) array."""
        return cls(**{name: _col(params[:, P[name]], params.shape[0]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class _FaceGrid:
    """Every frame's pixels in face coordinates (unit: mouth half-width), and the pose that maps them."""

    xs: np.ndarray  # (S, S) pixel column
    ys: np.ndarray  # (S, S) pixel row
    cx: np.ndarray  # (T, 1, 1) face centre, pixels
    cy: np.ndarray
    cos: np.ndarray  # (T, 1, 1) head roll
    sin: np.ndarray
    scale_px: np.ndarray  # (T, 1, 1) pixels per face unit
    u: np.ndarray  # (T, S, S) face x: the mouth corners at +-1
    v: np.ndarray  # (T, S, S) face y, pointing down: the lips meet at 0
    pixel: np.ndarray  # (T, 1, 1) one pixel in face units


def _face_grid(appearance: Appearance, nuisance: Nuisance, size: int, num_frames: int) -> _FaceGrid:
    """Map the pixel grid through each frame's head pose (translation, roll, scale) to face coordinates."""
    scale_px = _col(appearance.mouth_width_px * (size / 88.0) * nuisance.scale, num_frames)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    cx = _col(size / 2 - 0.5 + nuisance.dx, num_frames)
    cy = _col(size / 2 - 0.5 + appearance.vertical_offset_px * size / 88.0 + nuisance.dy, num_frames)
    cos, sin = _col(np.cos(nuisance.roll), num_frames), _col(np.sin(nuisance.roll), num_frames)
    X, Y = xs[None] - cx, ys[None] - cy
    u = (X * cos + Y * sin) / scale_px
    v = (-X * sin + Y * cos) / scale_px
    return _FaceGrid(xs=xs, ys=ys, cx=cx, cy=cy, cos=cos, sin=sin, scale_px=scale_px, u=u, v=v, pixel=1.0 / scale_px)


@dataclass(frozen=True)
class _MouthShape:
    """The inner lip contour and the coverage of the lips and of the open mouth, (T, S, S) each."""

    inner_width: np.ndarray  # (T, 1, 1) half-width of the aperture
    y_upper_inner: np.ndarray
    y_lower_inner: np.ndarray
    lips_and_mouth: np.ndarray  # coverage of everything inside the outer lip contour
    cavity: np.ndarray  # coverage of the aperture


def _mouth_shape(a: _Articulators, appearance: Appearance, grid: _FaceGrid) -> _MouthShape:
    """Lip contours from the articulators: a superellipse aperture inside lips with a Cupid's bow."""
    u, v, pixel = grid.u, grid.v, grid.pixel
    half_width = 1.0 + 0.12 * a.spread - 0.25 * a.round
    aperture = appearance.max_open * a.open * (1.0 - a.closure)
    upper_open = 0.38 * aperture * (1 - a.labiodental) + 0.13 * a.labiodental  # upper lip lifts to show the teeth
    lower_open = 0.62 * aperture * (1 - a.labiodental) - 0.03 * a.labiodental  # lower lip tucks up under them
    inner_width = half_width * (0.9 - 0.35 * a.round)
    exponent = 2.0 + 2.5 * a.spread * (1 - a.round)  # superellipse: rounder when rounded, flatter when spread
    xi = np.clip(np.abs(u) / inner_width, 0.0, 1.0)
    inner_profile = np.power(np.clip(1.0 - np.power(xi, exponent), 0.0, 1.0), 1.0 / exponent)
    y_upper_inner = -upper_open * inner_profile
    y_lower_inner = lower_open * inner_profile
    xo = np.clip(np.abs(u) / half_width, 0.0, 1.0)
    outer_profile = np.sqrt(np.clip(1.0 - xo ** 2, 0.0, 1.0))
    thickness = (1.0 + 0.45 * a.round) * (1.0 - 0.3 * a.closure)
    bow = 1.0 - appearance.cupid_bow * np.exp(-(u / 0.12) ** 2) + 0.12 * np.exp(-((np.abs(u) - 0.22) / 0.12) ** 2)
    y_upper_outer = y_upper_inner - appearance.upper_lip * thickness * outer_profile ** 0.7 * bow
    y_lower_outer = y_lower_inner + appearance.lower_lip * thickness * outer_profile ** 0.8 * (1 - 0.3 * a.labiodental)
    corner = half_width - np.abs(u)  # positive inside the mouth's width

    lips_and_mouth = _soft(np.minimum(np.minimum(v - y_upper_outer, y_lower_outer - v), corner), pixel)
    cavity = _soft(np.minimum(np.minimum(v - y_upper_inner, y_lower_inner - v), inner_width - np.abs(u)), pixel)
    cavity = cavity * np.clip(1.0 - 0.6 * a.closure, 0.0, 1.0)  # pressed lips: a fainter seam
    return _MouthShape(inner_width=inner_width, y_upper_inner=y_upper_inner, y_lower_inner=y_lower_inner,
                       lips_and_mouth=lips_and_mouth, cavity=cavity)


def _face(a: _Articulators, appearance: Appearance, grid: _FaceGrid) -> np.ndarray:
    """The skin around the mouth: texture, nostrils, philtrum, chin crease and the chin's lower edge."""
    u, v, pixel = grid.u, grid.v, grid.pixel
    skin = appearance.skin
    image = skin + _texture(appearance, grid.xs[None, :1] - grid.cx, grid.ys[None, :, :1] - grid.cy,
                            grid.cos, grid.sin, grid.scale_px)
    image -= 0.05 * np.clip(-v - 0.4, 0, 1)  # upper face slightly darker towards the nose
    nostrils = np.exp(-(((np.abs(u) - 0.42) / 0.16) ** 2 + ((v + 1.45) / 0.09) ** 2))
    image -= 0.35 * skin * nostrils
    philtrum = np.exp(-(((np.abs(u) - 0.09) / 0.035) ** 2)) * _soft(-(v + 0.3), pixel) * _soft(v + 1.3, pixel)
    image -= 0.05 * philtrum
    jaw_drop = 0.75 * appearance.max_open * a.open * (1 - a.closure)
    crease = np.exp(-(((v - (0.62 + 0.6 * jaw_drop)) / 0.07) ** 2)) * np.exp(-((u / 0.5) ** 2))
    image -= 0.06 * crease  # the mentolabial sulcus under the lower lip
    chin_edge = 1.55 + 0.9 * jaw_drop + 0.45 * u ** 2
    image -= 0.3 * skin * _soft(v - chin_edge, 4 * pixel)  # below the chin: shadow
    return image


def _paint_lips(image: np.ndarray, a: _Articulators, appearance: Appearance, grid: _FaceGrid,
                mouth: _MouthShape) -> np.ndarray:
    """Lay the lips over the face: darker than the skin, a highlight on the lower lip, darker when pressed."""
    u, v = grid.u, grid.v
    lip = appearance.skin - appearance.lip_contrast
    highlight = 0.06 * np.exp(-((u / 0.35) ** 2) - ((v - (mouth.y_lower_inner + 0.45 * appearance.lower_lip)) / 0.06) ** 2)
    return image * (1 - mouth.lips_and_mouth) + (lip + highlight - 0.03 * a.closure) * mouth.lips_and_mouth


def _inside_mouth(a: _Articulators, appearance: Appearance, grid: _FaceGrid, mouth: _MouthShape) -> np.ndarray:
    """What the aperture shows: the dark cavity, upper and lower teeth bands and the tongue tip."""
    u, v, pixel = grid.u, grid.v, grid.pixel
    teeth, lab, inner_width = a.teeth, a.labiodental, mouth.inner_width
    y_upper_inner, y_lower_inner = mouth.y_upper_inner, mouth.y_lower_inner
    inside = np.full_like(u, appearance.cavity)
    upper_band = (0.09 + 0.08 * lab) * teeth
    upper_teeth = _soft(np.minimum(y_upper_inner + upper_band - v, inner_width * 0.8 - np.abs(u)), pixel)
    lower_teeth = _soft(np.minimum(v - (y_lower_inner - 0.06 * teeth * (1 - lab)), inner_width * 0.7 - np.abs(u)), pixel)
    teeth_alpha = np.clip(np.maximum(upper_teeth * np.clip(teeth * 1.5, 0, 1), lower_teeth * np.clip(teeth - 0.2, 0, 1)), 0, 1)
    inside = inside * (1 - teeth_alpha) + appearance.teeth * teeth_alpha
    tongue_y = y_lower_inner - (0.05 + 0.5 * a.tongue) * (y_lower_inner - y_upper_inner)
    tongue_shape = ((u / (0.45 * inner_width)) ** 2 + ((v - tongue_y - 0.12) / 0.14) ** 2)
    tongue_alpha = np.clip(a.tongue, 0, 1) * _soft(1.0 - tongue_shape, 0.5 * pixel / 0.14)
    lip = appearance.skin - appearance.lip_contrast
    return inside * (1 - tongue_alpha) + (lip + 0.06) * tongue_alpha


def _light_and_sensor(image: np.ndarray, nuisance: Nuisance, xs: np.ndarray, rng: np.random.Generator,
                      noise_std: float) -> np.ndarray:
    """Apply the lighting (gain, side-light gradient), add sensor noise and quantise to uint8."""
    num_frames, size = image.shape[0], image.shape[-1]
    x_img = (xs[None] / (size - 1) - 0.5)
    image = image * _col(nuisance.gain, num_frames) * (1.0 + _col(nuisance.side_light, num_frames) * x_img)
    image = image + np.float32(noise_std) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def render_mouth(params: np.ndarray, appearance: Appearance, nuisance: Nuisance,
                 rng: np.random.Generator, size: int = 88, noise_std: float = 2.0 / 255) -> np.ndarray:
    """(T, len(PARAMETERS)) articulator values -> (T, size, size) uint8 frames."""
    articulators = _Articulators.from_params(params)
    grid = _face_grid(appearance, nuisance, size, params.shape[0])
    mouth = _mouth_shape(articulators, appearance, grid)
    image = _paint_lips(_face(articulators, appearance, grid), articulators, appearance, grid, mouth)
    image = image * (1 - mouth.cavity) + _inside_mouth(articulators, appearance, grid, mouth) * mouth.cavity
    return _light_and_sensor(image, nuisance, grid.xs, rng, noise_std)
