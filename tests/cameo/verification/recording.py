"""Liveness recordings made from a real face photo, for testing the verifier.

The face is scikit-image's ``astronaut`` sample (Eileen Collins; the PNG ships inside the
scikit-image wheel, nothing is downloaded). A head turn is rendered as a 2.5-D rotation: the
head is textured onto an ellipsoid with a nose ridge, rotated about the vertical axis through
the neck and re-projected with a depth buffer, so at large yaw the nose stands out against the
background the way a real profile does. Measured on the default recording (10 samples a
second): the frontal cascade holds the face up to about 50-60 degrees, sliding toward the
nose, and loses it beyond; the profile cascade finds it, in the right orientation, in one or
two samples of each 80-degree turn. No real turning footage ships in a package, so how often
it fires on a real head is not measured here. The back of the head, which the photo never
showed, is the photo's own hair stretched, and looks it. The digits are spoken by the
packaged Piper voice.

Conventions (the verifier's): a ``"left"`` turn is the person's own left. In an unmirrored
recording (as the camera sees, which is what phones store) the nose then points toward the
right edge of the picture; ``yaw > 0`` below means exactly that.

Bad cases, by option: ``face=False`` (nobody in frame), ``second_face=True`` (another person
beside), ``speech=False`` (silent audio track), ``audio_track=False`` (no audio stream at all),
``mirror=True`` (a mirrored selfie), ``stored_rotation=90`` (frames stored sideways with a
display rotation, as phones do; a good case), ``screen=True`` (the recording re-filmed off a
monitor), and :func:`reencode` (a replay of an earlier recording, re-encoded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

from generation.engines.previs.audio_voice import VOICE
from generation.media.encode import EncodeSettings, encode_mp4

WORDS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
}
SAMPLE_RATE = 48_000
FRAME_W, FRAME_H = 480, 640
# The astronaut photo's region shown in the portrait frame, and its head in photo coordinates.
CROP = (66, 0, 386, 427)  # x0, y0, x1, y1
HEAD_CENTER = (226.0, 100.0)
HEAD_AXES = (74.0, 90.0)  # half width, half height
NOSE = (225.0, 106.0, 140.0)  # x, bridge y, tip y


def _ease(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return 0.5 - 0.5 * math.cos(math.pi * u)


@dataclass
class Scene:
    """A still photo whose head can be rendered at any yaw (degrees, > 0: nose to the right)."""

    image: np.ndarray  # RGB uint8, the full frame
    center: tuple[float, float]
    axes: tuple[float, float]
    nose: tuple[float, float, float]
    depth_ratio: float = 1.15  # head depth / head width: heads are deeper than wide
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_astronaut(cls) -> Scene:
        photo = skimage.data.astronaut()
        x0, y0, x1, y1 = CROP
        sx, sy = FRAME_W / (x1 - x0), FRAME_H / (y1 - y0)
        image = cv2.resize(photo[y0:y1, x0:x1], (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)
        center = ((HEAD_CENTER[0] - x0) * sx, (HEAD_CENTER[1] - y0) * sy)
        axes = (HEAD_AXES[0] * sx, HEAD_AXES[1] * sy)
        nose = ((NOSE[0] - x0) * sx, (NOSE[1] - y0) * sy, (NOSE[2] - y0) * sy)
        return cls(image=image, center=center, axes=axes, nose=nose)

    def _surface(self):
        """Sub-pixel samples of the head: positions, depths, normals and colours."""
        if "surface" in self._cache:
            return self._cache["surface"]
        cx, cy = self.center
        a, c = self.axes
        b = a * self.depth_ratio
        step = 0.5
        xs = np.arange(cx - a, cx + a, step)
        ys = np.arange(cy - c, cy + c, step)
        gx, gy = np.meshgrid(xs, ys)
        sampled = cv2.remap(
            self.image, gx.astype(np.float32), gy.astype(np.float32), cv2.INTER_LINEAR
        )
        dx, dy = gx - cx, gy - cy
        head = cv2.remap(
            self._head_mask(), gx.astype(np.float32), gy.astype(np.float32), cv2.INTER_NEAREST
        )
        inside = ((dx / a) ** 2 + (dy / c) ** 2 < 1.0) & (head > 0)
        colours = sampled[inside]
        dx, dy, gx, gy = dx[inside], dy[inside], gx[inside], gy[inside]
        shell = np.sqrt(np.clip(1.0 - (dx / a) ** 2 - (dy / c) ** 2, 0.0, None))
        z = b * shell
        # The nose: a ridge growing from the bridge to the tip, falling off under it.
        nx, bridge, tip = self.nose
        along = np.clip((gy - bridge) / (tip - bridge), 0.0, None)
        height = np.where(along <= 1.0, along, np.exp(-((along - 1.0) ** 2) / 0.02))
        z = z + 0.2 * a * height * np.exp(-((gx - nx) ** 2) / (2 * (0.10 * a) ** 2))
        normal_x, normal_z = dx / a**2, np.maximum(z, 1e-3) / b**2
        length = np.hypot(normal_x, normal_z)
        normal_x, normal_z = normal_x / length, normal_z / length
        hair = self._hair_texture()
        surface = (dx, dy, z, normal_x, normal_z, colours, hair)
        self._cache["surface"] = surface
        return surface

    def _head_mask(self) -> np.ndarray:
        """Hair and face apart from the wall behind them (GrabCut, seeded by the head ellipse)."""
        cx, cy = self.center
        a, c = self.axes
        mask = np.full(self.image.shape[:2], cv2.GC_BGD, np.uint8)
        cv2.ellipse(mask, (int(cx), int(cy)), (int(a), int(c)), 0, 0, 360, cv2.GC_PR_FGD, -1)
        cv2.ellipse(
            mask, (int(cx), int(cy)), (int(0.55 * a), int(0.6 * c)), 0, 0, 360, cv2.GC_FGD, -1
        )
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(self.image, mask, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
        return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)

    def _hair_texture(self) -> np.ndarray:
        """The back of the head, which the photo never showed: its own hair, stretched."""
        cx, cy = self.center
        a, c = self.axes
        top = self.image[
            int(cy - 0.95 * c) : int(cy - 0.6 * c), int(cx - 0.5 * a) : int(cx + 0.5 * a)
        ]
        size = (int(2 * a * self.depth_ratio) + 4, int(2 * c) + 4)
        return cv2.GaussianBlur(cv2.resize(top, size, interpolation=cv2.INTER_CUBIC), (5, 5), 0)

    def render(self, yaw: float, *, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        dx, dy, z, normal_x, normal_z, colours, hair = self._surface()
        cx, cy = self.center[0] + shift[0], self.center[1] + shift[1]
        a, c = self.axes
        b = a * self.depth_ratio
        theta = math.radians(yaw)
        cos, sin = math.cos(theta), math.sin(theta)
        out = self.image.copy()
        if shift != (0.0, 0.0):
            out = cv2.warpAffine(
                out,
                np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                (FRAME_W, FRAME_H),
                borderMode=cv2.BORDER_REFLECT,
            )
        if abs(yaw) < 1e-6:
            return out
        # The rotated head's outline, filled with hair: whatever of it the face no longer covers
        # is the side and back of the head.
        half_width = math.sqrt((a * cos) ** 2 + (b * sin) ** 2)
        ys, xs = np.mgrid[0:FRAME_H, 0:FRAME_W]
        outline = ((xs - cx) / half_width) ** 2 + ((ys - cy) / c) ** 2 < 1.0
        hy = np.clip((ys[outline] - (cy - c)).astype(int), 0, hair.shape[0] - 1)
        hx = np.clip((xs[outline] - (cx - half_width)).astype(int), 0, hair.shape[1] - 1)
        out[outline] = hair[hy, hx]
        # Forward-project the textured front with a depth buffer; faces turned away are culled.
        x_new = cx + dx * cos + z * sin
        z_new = -dx * sin + z * cos
        facing = (-normal_x * sin + normal_z * cos) > 0.02
        order = np.argsort(z_new[facing])
        xs_new = x_new[facing][order]
        ys_new = cy + dy[facing][order]
        shown = colours[facing][order]
        # Each sample covers the pixels its 2x2 neighbourhood touches, so a stretched surface
        # leaves no holes; nearer samples are written last and win.
        for ox, oy in ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5)):
            xi = np.clip(np.floor(xs_new + ox).astype(int), 0, FRAME_W - 1)
            yi = np.clip(np.floor(ys_new + oy).astype(int), 0, FRAME_H - 1)
            out[yi, xi] = shown
        return out


def speech_audio(digits: list[str], *, start_s: float) -> tuple[np.ndarray, float]:
    """The digits read aloud (mono float, SAMPLE_RATE) placed at ``start_s``; returns the
    audio and when the speech ends."""
    text = ", ".join(WORDS[d] for d in digits) + "."
    line = VOICE.speak(text, SAMPLE_RATE)
    offset = int(start_s * SAMPLE_RATE)
    audio = np.zeros(offset + line.size, dtype=np.float32)
    audio[offset:] = line
    return audio, start_s + line.size / SAMPLE_RATE


def yaw_track(
    turns: list[str], *, start_s: float, fps: int, yaw_deg: float, ramp_s: float, hold_s: float
) -> list[float]:
    """Per-frame yaw: frontal until ``start_s``, then each turn out, held, and back."""
    track = [0.0] * round(start_s * fps)
    for turn in turns:
        sign = {"left": 1.0, "right": -1.0}[turn]
        ramp, hold, rest = int(ramp_s * fps), int(hold_s * fps), int(0.2 * fps)
        track += [sign * yaw_deg * _ease((i + 1) / ramp) for i in range(ramp)]
        track += [sign * yaw_deg] * hold
        track += [sign * yaw_deg * (1 - _ease((i + 1) / ramp)) for i in range(ramp)]
        track += [0.0] * rest
    return track + [0.0] * int(0.25 * fps)


def second_face_overlay(frame: np.ndarray, scene: Scene) -> np.ndarray:
    """A second person at the left edge: the same head, frontal, a little smaller."""
    cx, cy = scene.center
    a, c = scene.axes
    head = scene.image[
        int(cy - 1.05 * c) : int(cy + 1.1 * c), int(cx - 1.05 * a) : int(cx + 1.05 * a)
    ]
    head = cv2.resize(head, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    out = frame.copy()
    h, w = head.shape[:2]
    ty = int(cy - 0.8 * c)
    out[ty : ty + h, 0:w] = head
    return out


def faceless_frame(scene: Scene) -> np.ndarray:
    """The same room with nobody in it: the head painted out of the background."""
    mask = np.zeros(scene.image.shape[:2], np.uint8)
    cx, cy = scene.center
    a, c = scene.axes
    cv2.ellipse(
        mask, (int(cx), int(cy + 0.3 * c)), (int(1.2 * a), int(1.5 * c)), 0, 0, 360, 255, -1
    )
    return cv2.inpaint(scene.image, mask, 9, cv2.INPAINT_TELEA)


def camera_noise(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Sensor noise: signal-dependent (shot) plus a floor (read), as a phone camera adds."""
    f = frame.astype(np.float32)
    noise = rng.standard_normal(f.shape, dtype=np.float32) * (sigma * np.sqrt(f / 255.0 + 0.15))
    return np.clip(f + noise, 0, 255).astype(np.uint8)


class ScreenRecapture:
    """A recording shown on a monitor and filmed by a second camera held still in front of it.

    The camera is simulated at two samples per pixel a side: each sample looks up which subpixel
    of the panel it sees (an RGB stripe panel, its pixels about 1.6 camera pixels wide, seen
    slightly rotated), the displayed picture there, and the rolling refresh band; the samples
    are blurred by the lens and averaged into camera pixels. The panel's bezel and the wall
    around it fill the rest of the frame, and the camera adds its own noise.
    """

    SUPER = 2

    def __init__(self, width: int, height: int, *, pitch: float = 1.6, tilt_deg: float = 1.5):
        self.width, self.height = width, height
        s = self.SUPER
        panel = (0.82 * width, 0.82 * height)
        self.origin = ((width - panel[0]) / 2, (height - panel[1]) / 2)
        self.panel = panel
        ys, xs = np.mgrid[0 : height * s, 0 : width * s].astype(np.float32)
        xs, ys = (xs + 0.5) / s - width / 2, (ys + 0.5) / s - height / 2
        angle = math.radians(tilt_deg)
        # Camera pixel -> panel position (in camera pixels from the panel's corner).
        px = xs * math.cos(angle) + ys * math.sin(angle) + panel[0] / 2
        py = -xs * math.sin(angle) + ys * math.cos(angle) + panel[1] / 2
        self.inside = (px >= 0) & (px < panel[0]) & (py >= 0) & (py < panel[1])
        self.map_x, self.map_y = px, py
        # Which subpixel each sample sees: three vertical stripes per panel pixel, dark rows
        # between pixel rows.
        u, v = px / pitch, py / pitch
        stripe = np.floor((u - np.floor(u)) * 3).astype(np.int8)
        mask = np.full((*u.shape, 3), 0.12, np.float32)
        for channel in range(3):
            mask[..., channel][stripe == channel] = 2.6
        mask *= np.where((v - np.floor(v)) > 0.82, 0.35, 1.0)[..., None]
        self.mask = mask
        self.rows = ys + height / 2

    def __call__(self, frame: np.ndarray, index: int, fps: int, rng) -> np.ndarray:
        h, w = frame.shape[:2]
        sx, sy = w / self.panel[0], h / self.panel[1]
        shown = cv2.remap(
            frame,
            self.map_x * sx,
            self.map_y * sy,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)
        shown *= self.mask
        # Refresh banding: the panel's scan and the camera's rolling shutter beat.
        t = index / fps
        band = 1.0 + 0.06 * np.sin(2 * np.pi * (self.rows / (self.height / 3.2) + t * 1.7))
        shown *= band[..., None]
        wall = np.empty_like(shown)
        wall[:] = (118, 112, 104)
        s = self.SUPER
        x0, y0 = self.origin
        bezel = 12
        cv2.rectangle(
            wall,
            (int((x0 - bezel) * s), int((y0 - bezel) * s)),
            (int((x0 + self.panel[0] + bezel) * s), int((y0 + self.panel[1] + bezel) * s)),
            (22, 22, 24),
            -1,
        )
        wall[self.inside] = shown[self.inside]
        lens = cv2.GaussianBlur(wall, (0, 0), 0.6 * s)
        filmed = cv2.resize(lens, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return camera_noise(np.clip(filmed, 0, 255).astype(np.uint8), rng, 4.0)


def make_recording(
    path: str | Path,
    *,
    digits: list[str],
    turns: list[str],
    fps: int = 24,
    seed: int = 0,
    face: bool = True,
    second_face: bool = False,
    speech: bool = True,
    audio_track: bool = True,
    mirror: bool = False,
    screen: bool = False,
    yaw_deg: float = 80.0,
    ramp_s: float = 0.3,
    hold_s: float = 0.35,
    noise: float = 3.0,
    crf: int = 20,
    stored_rotation: int = 0,
) -> dict:
    """Writes the recording to ``path`` (H.264 + AAC MP4) and returns its timeline: when the
    speech starts and ends and the yaw of every frame."""
    rng = np.random.default_rng(seed)
    scene = Scene.from_astronaut()
    speech_start = 0.4
    if speech:
        audio, speech_end = speech_audio(digits, start_s=speech_start)
    else:
        speech_end = speech_start + 0.45 * len(digits)
        audio = np.zeros(int(speech_end * SAMPLE_RATE), np.float32)
    yaws = yaw_track(
        turns, start_s=speech_end + 0.2, fps=fps, yaw_deg=yaw_deg, ramp_s=ramp_s, hold_s=hold_s
    )
    empty = faceless_frame(scene) if not face else None
    recapture = ScreenRecapture(FRAME_W, FRAME_H) if screen else None
    frames = np.empty((len(yaws), FRAME_H, FRAME_W, 3), np.uint8)
    for i, yaw in enumerate(yaws):
        # A hand-held phone never stands still.
        shift = (2.0 * math.sin(i * 0.21), 1.5 * math.sin(i * 0.13 + 1.0))
        frame = scene.render(yaw, shift=shift) if face else empty.copy()
        if second_face:
            frame = second_face_overlay(frame, scene)
        if mirror:
            frame = frame[:, ::-1]
        frame = camera_noise(frame, rng, noise)
        if recapture is not None:
            frame = recapture(frame, i, fps, rng)
        frames[i] = frame
    audio = np.pad(audio, (0, max(0, int(len(yaws) / fps * SAMPLE_RATE) - audio.size)))
    audio = audio + rng.standard_normal(audio.size).astype(np.float32) * 0.002 if speech else audio
    if stored_rotation:
        # What a phone held upright stores: the sensor's landscape frames, and a display
        # rotation telling players to turn them back.
        frames = np.ascontiguousarray(np.rot90(frames, k=-stored_rotation // 90, axes=(1, 2)))
    _encode(
        frames,
        audio if audio_track else None,
        Path(path),
        fps=fps,
        crf=crf,
        rotation=stored_rotation,
    )
    return {"speech": (speech_start, speech_end), "yaw": yaws, "fps": fps}


def _encode(
    frames: np.ndarray, audio: np.ndarray | None, path: Path, *, fps: int, crf: int, rotation: int
) -> None:
    """H.264 + AAC MP4, with a display rotation (counter-clockwise degrees) when asked."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"}
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            pcm = np.clip(audio, -1.0, 1.0).astype(np.float32)[
                : int(len(frames) / fps * SAMPLE_RATE)
            ]
            for start in range(0, pcm.size, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(pcm[np.newaxis, start : start + 1024]),
                    format="fltp",
                    layout="mono",
                )
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)


def reencode(src: str | Path, dst: str | Path, *, scale: float = 0.75, crf: int = 30) -> None:
    """A replay: the same recording decoded, scaled and encoded again, metadata gone."""
    frames, audio, fps = [], [], 24
    with av.open(str(src)) as container:
        video = container.streams.video[0]
        fps = round(float(video.average_rate or 24))
        for frame in container.decode(video):
            image = frame.to_ndarray(format="rgb24")
            size = (int(image.shape[1] * scale) // 2 * 2, int(image.shape[0] * scale) // 2 * 2)
            frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    with av.open(str(src)) as container:
        if container.streams.audio:
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    audio.append(out.to_ndarray()[0])
    pcm = np.concatenate(audio)[np.newaxis, :] if audio else None
    encode_mp4(
        np.stack(frames),
        pcm,
        dst,
        fps=fps,
        sample_rate=SAMPLE_RATE,
        settings=EncodeSettings(crf=crf, preset="veryfast"),
    )
