"""The previs frame renderer: per-pixel ray casting in torch, with work spent where things are.

A frame is built in three layers, each as cheap as its content allows:

1. **Background** (sky, ground, sea, skyline): a pure function of the ray direction, the camera
   position and time. When a shot's camera does not move it is shaded once per shot at full
   resolution and copied for each frame; only the rows holding animated water are re-shaded.
   When the camera moves it is shaded at half resolution per frame and upsampled (it holds no
   sharp detail a bilinear upsample would lose: edges are anti-aliased analytically over the
   pixel footprint and ground texture fades with distance).
2. **Shadows and contact darkening** on the ground, only inside screen boxes that bound each
   object's shadow footprint (soft, analytic: capsule and slab occluders).
3. **Objects**, only inside each object's screen box, supersampled 2x2 there (anti-aliasing
   where edges actually are) unless only spheres (analytic edge coverage) are in it, with
   diffuse + specular shading, environment reflection, soft object-to-object shadows and
   simple procedural surface patterns; composited by coverage. Each primitive is intersected
   only inside its own screen box, and only the samples something covers are shaded, so a
   figure's thin limbs cost what they cover rather than their whole bounding box.

Frames are independent, so they are rendered by a few threads at once, each running torch ops
single-threaded: for these mid-sized tensors that beats torch's intra-op threads, which spend
much of their time waking each other (measured on the 2-core target). Every frame is a pure
function of (plan, trajectory, camera, look, seed), so results are identical whatever thread
runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from generation.engines.base import Cancelled, SceneObject

from .camera import NEAR, CameraFrame
from .look import Look, direction
from .physics import Trajectory, bounds_radius, is_figure, lies_down
from .vocab import FIGURE_HEAD, FIGURE_HEIGHT

INF = 1e9
FADE_IN_S = 0.35  # objects fade in over the reference plate, so frame 0 is the plate itself


def smoothstep(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp_(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def fract(x: torch.Tensor) -> torch.Tensor:
    return x - torch.floor(x)


def hash2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A cheap deterministic hash of two lattice coordinates into [0, 1)."""
    return fract(torch.sin(a * 12.9898 + b * 78.233) * 43758.5453)


@dataclass
class Prim:
    """One ray-traceable primitive of an object, at one frame."""

    kind: str  # "sphere" | "box" | "cylinder"
    obj: int
    centre: np.ndarray
    rot: np.ndarray  # local -> world
    size: float  # radius or half-extent
    half_height: float  # cylinders
    albedo: np.ndarray  # linear RGB
    material: str
    pattern: str
    face: torch.Tensor | None = None  # a cameo texture (128, 128, 3) linear, for heads


MATERIAL_SHADING = {
    # specular strength, shininess, reflectivity (F0), metal, opacity
    "matte": (0.03, 8.0, 0.02, 0.0, 1.0),
    "plastic": (0.45, 70.0, 0.05, 0.0, 1.0),
    "rubber": (0.22, 30.0, 0.04, 0.0, 1.0),
    "metal": (1.0, 140.0, 0.7, 1.0, 1.0),
    "wood": (0.1, 14.0, 0.03, 0.0, 1.0),
    "glass": (1.2, 220.0, 0.08, 0.0, 0.35),
    "stone": (0.06, 10.0, 0.03, 0.0, 1.0),
}


class FrameRenderer:
    """Renders frames of one clip; thread-safe once constructed (all state is read-only)."""

    def __init__(
        self,
        *,
        objects: list[SceneObject],
        traj: Trajectory,
        cameras: list[CameraFrame],
        look: Look,
        width: int,
        height: int,
        fps: int,
        seed: int,
        device: torch.device,
        plate: np.ndarray | None = None,
        faces: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.objects = objects
        self.traj = traj
        self.cameras = cameras
        self.look = look
        self.width = width
        self.height = height
        self.fps = fps
        self.device = device
        self.dtype = torch.float32
        rng = np.random.default_rng(seed)
        # The seed moves texture phases (sand ripples, star field, shoreline), never the action.
        self.phase = rng.uniform(0.0, 100.0, size=4).astype(np.float32)
        self.plate = self._prepare_plate(plate) if plate is not None else None
        self.faces = {k: self._prepare_face(v) for k, v in (faces or {}).items()}
        # Per shot: (full-frame background, rows with water, their static terms) for a camera
        # that does not move, or Nones.
        self._static: dict[int, tuple] = {}
        # The planet (space) hangs in a fixed world direction, placed for the first camera.
        self.planet_dir = direction(-22.0, 24.0, cameras[0].basis(1.0)[0]) if cameras else None

    # -----------------------------------------------------------------------------------------
    # Inputs

    def _prepare_plate(self, image: np.ndarray) -> torch.Tensor:
        """The reference image cover-cropped and resized to the frame, as uint8 (H, W, 3)."""
        img = torch.from_numpy(np.ascontiguousarray(image[..., :3])).to(self.device)
        h, w = img.shape[:2]
        target = self.width / self.height
        if w / h > target:
            cw = max(1, round(h * target))
            x0 = (w - cw) // 2
            img = img[:, x0 : x0 + cw]
        else:
            ch = max(1, round(w / target))
            y0 = (h - ch) // 2
            img = img[y0 : y0 + ch]
        chw = img.permute(2, 0, 1).unsqueeze(0).float()
        out = F.interpolate(
            chw,
            size=(self.height, self.width),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).contiguous()

    def _prepare_face(self, image: np.ndarray) -> torch.Tensor:
        img = torch.from_numpy(np.ascontiguousarray(image[..., :3])).float()
        h, w = img.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        img = img[y0 : y0 + side, x0 : x0 + side].permute(2, 0, 1).unsqueeze(0)
        img = F.interpolate(
            img, size=(128, 128), mode="bilinear", antialias=True, align_corners=False
        )
        srgb = (img[0].permute(1, 2, 0) / 255.0).clamp(0, 1)
        return (srgb**2.2).contiguous().to(self.device)

    # -----------------------------------------------------------------------------------------
    # Frame

    def render_into(self, index: int, out: np.ndarray) -> None:
        """Render frame ``index`` into ``out`` (H, W, 3) uint8."""
        cam = self.cameras[index]
        t = index / self.fps
        frame = self._background_frame(index, cam, t)
        fade = 1.0
        if self.plate is not None:
            fade = min(1.0, index / max(FADE_IN_S * self.fps, 1.0))
        if fade > 0.0 and self.objects:
            prims = self._prims(index, cam)
            self._shadows(frame, cam, index, fade)
            self._objects(frame, cam, prims, t, fade)
        if frame.device.type == "cpu":
            out[...] = frame.numpy()
        else:
            out[...] = frame.cpu().numpy()

    def _is_static(self, cam: CameraFrame) -> bool:
        shot = [c for c in self.cameras if c.shot == cam.shot]
        first = shot[0]
        return all(
            np.allclose(c.position, first.position) and np.allclose(c.target, first.target)
            for c in shot
        )

    def prepare(self, should_cancel=None) -> None:
        """Shade the background of every still shot once, before frames render in parallel."""
        if self.plate is not None:
            return
        for shot in sorted({c.shot for c in self.cameras}):
            if should_cancel is not None and should_cancel():
                raise Cancelled("cancelled while preparing backgrounds")
            self._prepare_shot(next(c for c in self.cameras if c.shot == shot))

    def _prepare_shot(self, cam: CameraFrame) -> None:
        if self._is_static(cam):
            full, band = self._shade_full(cam, 0.0, with_band=True)
            parts = self._band_parts(cam, *band) if band is not None else None
            self._static[cam.shot] = (full, band, parts)
        else:
            self._static[cam.shot] = (None, None, None)

    def _background_frame(self, index: int, cam: CameraFrame, t: float) -> torch.Tensor:
        if self.plate is not None:
            return self._plate_frame(cam)
        if cam.shot not in self._static:
            self._prepare_shot(cam)  # without prepare(): still right, just not shared up front
        cached, band, parts = self._static[cam.shot]
        if cached is not None:
            frame = cached.clone()
            if band is not None:
                color, _ = self._compose(parts, t, want_water=False)
                frame[band[0] : band[1]] = self._to_uint8(color)
            return frame
        return self._shade_half(cam, t)

    # -----------------------------------------------------------------------------------------
    # Background

    def _rays(self, cam: CameraFrame, xs: torch.Tensor, ys: torch.Tensor):
        """Unit ray directions (h, w, 1) x3 for pixel centres at ``xs`` (w,) and ``ys`` (h,)."""
        forward, right, up, tan_h, tan_v = cam.basis(self.width / self.height)
        sx = ((xs / self.width) * 2.0 - 1.0) * tan_h
        sy = (1.0 - (ys / self.height) * 2.0) * tan_v
        sx = sx.view(1, -1, 1)
        sy = sy.view(-1, 1, 1)
        dx = forward[0] + sx * right[0] + sy * up[0]
        dy = forward[1] + sx * right[1] + sy * up[1]
        dz = forward[2] + sx * right[2] + sy * up[2]
        inv = torch.rsqrt(dx * dx + dy * dy + dz * dz)
        return dx * inv, dy * inv, dz * inv

    def _point_rays(self, cam: CameraFrame, xs: torch.Tensor, ys: torch.Tensor):
        """Unit ray directions (1, m, 1) x3 through the points (xs, ys), as ``_rays`` casts them."""
        forward, right, up, tan_h, tan_v = cam.basis(self.width / self.height)
        sx = (((xs / self.width) * 2.0 - 1.0) * tan_h).view(1, -1, 1)
        sy = ((1.0 - (ys / self.height) * 2.0) * tan_v).view(1, -1, 1)
        dx = forward[0] + sx * right[0] + sy * up[0]
        dy = forward[1] + sx * right[1] + sy * up[1]
        dz = forward[2] + sx * right[2] + sy * up[2]
        inv = torch.rsqrt(dx * dx + dy * dy + dz * dz)
        return dx * inv, dy * inv, dz * inv

    def _coords(self, n: int, start: float, step: float) -> torch.Tensor:
        return start + step * torch.arange(n, device=self.device, dtype=self.dtype)

    def _shade_full(self, cam: CameraFrame, t: float, with_band: bool):
        xs = self._coords(self.width, 0.5, 1.0)
        ys = self._coords(self.height, 0.5, 1.0)
        d = self._rays(cam, xs, ys)
        pix = 2.0 * math.tan(math.radians(cam.fov_y) / 2.0) / self.height
        color, water = self._shade(d, cam, t, pix, want_water=with_band)
        band = None
        if with_band and water is not None:
            rows = torch.nonzero(water.view(self.height, -1).amax(dim=1) > 0).flatten()
            if len(rows):
                band = (int(rows[0]), int(rows[-1]) + 1)
        return self._to_uint8(color), band

    def _band_parts(self, cam: CameraFrame, r0: int, r1: int) -> dict:
        """Static background terms of the rows that hold water, re-composed every frame."""
        xs = self._coords(self.width, 0.5, 1.0)
        ys = self._coords(r1 - r0, r0 + 0.5, 1.0)
        d = self._rays(cam, xs, ys)
        pix = 2.0 * math.tan(math.radians(cam.fov_y) / 2.0) / self.height
        return self._parts(d, cam, pix)

    def _shade_half(self, cam: CameraFrame, t: float) -> torch.Tensor:
        hw, hh = (self.width + 1) // 2, (self.height + 1) // 2
        sx, sy = self.width / hw, self.height / hh
        xs = self._coords(hw, 0.5 * sx, sx)
        ys = self._coords(hh, 0.5 * sy, sy)
        d = self._rays(cam, xs, ys)
        pix = 2.0 * math.tan(math.radians(cam.fov_y) / 2.0) / hh
        color, _ = self._shade(d, cam, t, pix, want_water=False)
        small = self._to_uint8(color)  # (hh, hw, 3)
        nchw = small.permute(2, 0, 1).unsqueeze(0)  # a channels-last view: no copy
        if nchw.device.type == "cpu":
            big = F.interpolate(
                nchw, size=(self.height, self.width), mode="bilinear", align_corners=False
            )
        else:
            big = F.interpolate(
                nchw.float(), size=(self.height, self.width), mode="bilinear", align_corners=False
            )
            big = big.round().clamp(0, 255).to(torch.uint8)
        return big[0].permute(1, 2, 0).contiguous()

    def _to_uint8(self, color: torch.Tensor) -> torch.Tensor:
        return (color * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8)

    def _finish(self, color: torch.Tensor, dx, dy, dz, cam_forward: np.ndarray) -> torch.Tensor:
        """Linear radiance -> graded, tone-mapped, vignetted sRGB in [0, 1]."""
        look = self.look
        c = color * look.exposure
        if look.saturation != 1.0:
            lum = c[..., 0:1] * 0.2126 + c[..., 1:2] * 0.7152 + c[..., 2:3] * 0.0722
            c = lum + (c - lum) * look.saturation
        c = c * torch.as_tensor(look.tint, device=c.device)
        # Vignette by the angle from the view axis, which is the same in tiles and full frames.
        cos_axis = (
            dx * float(cam_forward[0]) + dy * float(cam_forward[1]) + dz * float(cam_forward[2])
        )
        c = c * (1.0 - look.vignette * (1.0 - cos_axis * cos_axis) * 4.0).clamp_(0.4, 1.0)
        c = c.clamp_(min=0.0)
        # ACES filmic fit (Narkowicz), then contrast around mid-grey and the sRGB-ish gamma.
        c = (c * (2.51 * c + 0.03)) / (c * (2.43 * c + 0.59) + 0.14)
        if look.contrast != 1.0:
            c = (c - 0.18) * look.contrast + 0.18
        c = c.clamp_(1e-6, 1.0)
        return torch.exp(torch.log(c) * (1.0 / 2.2))

    def _shade(self, d, cam: CameraFrame, t: float, pix: float, want_water: bool):
        """Background colour for unit rays ``d`` of ``cam``; also the water coverage when asked."""
        return self._compose(self._parts(d, cam, pix), t, want_water)

    def _parts(self, d, cam: CameraFrame, pix: float) -> dict:
        """Everything about the background that does not change with time (only the sea does)."""
        look = self.look
        dev = self.device
        dx, dy, dz = d
        ox, oy, oz = (float(v) for v in cam.position)
        S = look.sun_dir
        vec = lambda a: torch.as_tensor(a, device=dev, dtype=self.dtype)  # noqa: E731
        zen, hor = vec(look.zenith), vec(look.horizon)

        ay = dy.abs()
        # Horizon colour holds only near the horizon; a few degrees up the zenith takes over.
        grad = 1.0 - torch.exp(ay * -look.sky_falloff)
        sky = hor + (zen - hor) * grad
        # Cosine to the sun; below the horizon this is the mirrored ray, which is what the
        # sea reflects (so the same tensor serves the sky and the water's sun path).
        cs = dx * float(S[0]) + ay * float(S[1]) + dz * float(S[2])
        if look.glow.any():
            sky = sky + torch.exp((cs - 1.0) * look.glow_width) * vec(look.glow)
        if look.band.any():
            toward = torch.exp((cs - 1.0) * 2.5) * torch.exp(ay * -9.0)
            sky = sky + toward * vec(look.band)
        if look.time_of_day in ("day", "sunset", "sunrise") and look.setting not in (
            "studio",
            "space",
        ):
            sky = self._clouds(sky, dx, dy, dz, ay, cs)
        above = smoothstep(-pix, pix, dy)
        if look.stars > 0:
            sky = sky + self._stars(dx, dy, dz, pix) * above
        if look.planet:
            sky = self._planet(sky, dx, dy, dz, pix)
        if look.disc_color.any():
            w = max(pix * 1.5, 1e-4)
            disc = smoothstep(look.disc_cos - w, look.disc_cos + w, cs) * above
            sky = sky + disc * vec(look.disc_color)
        if look.skyline:
            sky = self._skyline(sky, dx, dy, dz, pix)

        down = (-dy).clamp(min=1e-4)
        tg = oy / down
        gx = ox + tg * dx
        gz = oz + tg * dz
        fade = torch.exp(tg * -0.08)
        albedo = self._ground_albedo(gx, gz, fade)
        light = vec(look.sun_color * max(float(S[1]), 0.0) + look.amb_sky)
        return {
            "d": d,
            "forward": cam.basis(1.0)[0],
            "eye": (ox, oz),
            "pix": pix,
            "sky": sky,
            "ground": albedo * light,
            "gx": gx,
            "gz": gz,
            "tg": tg,
            "down": down,
            "cs": cs,
            "fade": fade,
            "fog": 1.0 - torch.exp(tg * -look.fog_density),
            "cover": smoothstep(pix, -pix, dy),
        }

    def _compose(self, parts: dict, t: float, want_water: bool):
        look = self.look
        ground, sky, cover = parts["ground"], parts["sky"], parts["cover"]
        water = None
        if look.water:
            ground, water = self._sea(parts, t)
        fog_col = torch.as_tensor(look.fog, device=ground.device, dtype=self.dtype)
        ground = ground + (fog_col - ground) * parts["fog"]
        color = sky + (ground - sky) * cover
        out = self._finish(color, *parts["d"], parts["forward"])
        if want_water and water is not None:
            water = water * cover
        return out, water

    def _clouds(self, sky, dx, dy, dz, ay, cs):
        """Thin stratus bands, lit from below near the sun at dusk."""
        look = self.look
        up = dy.clamp(min=0.02)
        u = dx / up * 0.35 + float(self.phase[0])
        v = dz / up * 0.35 + float(self.phase[1])
        n = (
            torch.sin(u * 0.9 + torch.sin(v * 0.5) * 1.6) * 0.5
            + torch.sin(v * 1.7 + u * 0.3) * 0.35
        )
        n = n + torch.sin(u * 3.1 + v * 2.3) * 0.15
        density = (
            smoothstep(0.35, 0.95, n)
            * smoothstep(0.02, 0.12, dy)
            * (1.0 - smoothstep(0.35, 0.8, dy))
        )
        if look.time_of_day == "day":
            cloud = torch.as_tensor(look.horizon * 1.25, device=sky.device, dtype=self.dtype)
        else:
            # Undersides catch the low sun: hot near it, mauve away from it.
            near_sun = torch.exp((cs - 1.0) * 4.0)
            warm = torch.as_tensor(
                look.glow * 0.9 + look.band * 0.6, device=sky.device, dtype=self.dtype
            )
            cool = torch.as_tensor(
                look.zenith * 3.5 + look.band * 0.25, device=sky.device, dtype=self.dtype
            )
            cloud = cool + (warm - cool) * near_sun
        return sky + (cloud - sky) * (density * 0.85)

    def _stars(self, dx, dy, dz, pix):
        scale = 1.0 / max(pix * 1.5, 1e-4)
        a = torch.floor(dx * scale) + float(self.phase[2])
        b = torch.floor(dy * scale) + torch.floor(dz * scale) * 7.0
        h = hash2(a, b)
        twinkle = ((h - 0.9975) / 0.0025).clamp(0.0, 1.0)
        return twinkle * torch.as_tensor([0.9, 0.9, 1.0], device=dx.device) * 1.5

    def _planet(self, sky, dx, dy, dz, pix):
        look = self.look
        p = self.planet_dir
        cos_r = math.cos(math.radians(11.0))
        cp = dx * float(p[0]) + dy * float(p[1]) + dz * float(p[2])
        inside = smoothstep(cos_r - pix, cos_r + pix, cp)
        S = look.sun_dir
        # Lit side faces the sun: offset of the ray from the planet centre, along the sun.
        lit = (
            (dx - float(p[0])) * float(S[0])
            + (dy - float(p[1])) * float(S[1])
            + (dz - float(p[2])) * float(S[2])
        )
        shade = smoothstep(-0.12, 0.12, lit * 5.0 + 0.2)
        bands = 0.5 + 0.5 * torch.sin(dy * 60.0 + torch.sin(dx * 25.0) * 1.5)
        base = torch.as_tensor([0.10, 0.28, 0.55], device=dx.device)
        alt = torch.as_tensor([0.45, 0.55, 0.65], device=dx.device)
        color = (base + (alt - base) * bands) * (0.03 + shade * 1.6)
        return sky + (color - sky) * inside

    def _skyline(self, sky, dx, dy, dz, pix):
        """Distant silhouettes on the horizon as an elevation profile over azimuth."""
        look = self.look
        az = torch.atan2(dx, dz) + float(self.phase[3]) * 0.05
        kind = look.skyline
        windows = None
        if kind == "trees":
            # Two rows of conical crowns at different spacings read as a forest edge.
            near = 0.5 - (fract(az * 31.0 + torch.sin(az * 11.0) * 0.6) - 0.5).abs()
            far = 0.5 - (fract(az * 47.0 + 0.3) - 0.5).abs()
            size = 0.75 + 0.25 * torch.sin(az * 17.0 + 1.0)
            elev = torch.maximum(0.03 + near * 0.11 * size, 0.035 + far * 0.07) + 0.012 * torch.sin(
                az * 5.0
            )
        elif kind in ("city", "street"):
            cells = 26.0 if kind == "city" else 14.0
            cell = torch.floor(az * cells)
            h = hash2(cell, cell * 0.37 + 3.0)
            base, spread = (0.05, 0.16) if kind == "city" else (0.12, 0.2)
            elev = base + spread * h * h
            if look.windows > 0:
                floors = 160.0 if kind == "city" else 90.0
                cols = fract(az * cells * 5.0)
                rows = fract(dy * floors)
                lit = hash2(torch.floor(az * cells * 5.0), torch.floor(dy * floors))
                below_roof = (dy < elev - 1.5 / floors).float()
                windows = (
                    (cols > 0.5).float()
                    * (rows > 0.55).float()
                    * (lit > 0.72).float()
                    * below_roof
                    * look.windows
                )
        elif kind == "mountains":
            peaks = 1.0 - (fract(az * 1.6 + 0.2) * 2.0 - 1.0).abs()
            small = 1.0 - (fract(az * 4.7 + 0.6) * 2.0 - 1.0).abs()
            elev = 0.03 + 0.12 * peaks * peaks + 0.04 * small
        elif kind == "dunes":
            elev = 0.018 + 0.012 * torch.sin(az * 3.0 + 1.0) + 0.006 * torch.sin(az * 9.0)
        else:  # hills
            elev = 0.022 + 0.018 * torch.sin(az * 2.5 + 1.0) + 0.008 * torch.sin(az * 7.0 + 2.0)
        cover = smoothstep(pix, -pix, dy - elev) * smoothstep(-pix * 2.0, 0.0, dy)
        color = torch.as_tensor(look.skyline_color, device=dx.device, dtype=self.dtype)
        haze = torch.as_tensor(look.fog, device=dx.device, dtype=self.dtype)
        sil = color + (haze - color) * (0.15 if kind == "trees" else 0.35)
        if kind == "mountains":
            # Snow on the upper part of each peak only, so the range keeps its rocky body.
            snowcap = smoothstep(elev * 0.55, elev * 0.7, dy)
            cap = torch.as_tensor(look.horizon * 0.9 + 0.1, device=dx.device, dtype=self.dtype)
            sil = sil + (cap - sil) * snowcap
        if windows is not None:
            sil = sil + windows * torch.as_tensor([1.0, 0.7, 0.32], device=dx.device)
        return sky + (sil - sky) * cover

    def _ground_albedo(self, gx, gz, fade):
        look = self.look
        base = torch.as_tensor(look.albedo, device=gx.device, dtype=self.dtype)
        kind = look.ground
        p0, p1 = float(self.phase[0]), float(self.phase[1])
        if kind == "sand":
            # Wind ripples, footprint-sized dimples and broad damp patches. A low sun rakes
            # across the ripples, lighting the slopes that face it: that striping is most of
            # what makes sand read as sand at dusk.
            phase = gx * 3.0 + gz * 4.0 + torch.sin(gz * 1.1 + gx * 0.7 + p0) * 2.5
            S = self.look.sun_dir
            rake = (0.6 * float(S[0]) + 0.8 * float(S[2])) * (1.0 - float(S[1])) * 0.22
            ripple = torch.sin(phase) * 0.07 + torch.cos(phase) * rake
            dimple = torch.sin(gx * 17.0 + gz * 5.0) * torch.sin(gz * 19.0 - gx * 7.0)
            patch = torch.sin(gx * 0.6 + p1) * torch.sin(gz * 0.45 + gx * 0.2)
            return base * (1.0 + (ripple + dimple * 0.06 + patch * 0.1) * fade)
        if kind == "dune":
            ripple = torch.sin(gx * 0.9 + torch.sin(gz * 0.35 + p0) * 2.2)
            fine = torch.sin(gx * 7.0 + gz * 2.0)
            return base * (1.0 + (ripple * 0.12 + fine * 0.04) * fade)
        if kind in ("grass", "soil"):
            n = (
                torch.sin(gx * 1.7 + p0) * torch.sin(gz * 2.3)
                + torch.sin(gx * 5.3 + gz * 3.1) * 0.5
            )
            tint = torch.as_tensor([1.25, 1.1, 0.6], device=gx.device)
            mix = smoothstep(-0.6, 0.9, n) * fade
            return base * (1.0 + (tint - 1.0) * mix.expand(-1, -1, 1)) * (1.0 + 0.12 * n * fade)
        if kind == "asphalt":
            grain = torch.sin(gx * 13.0 + gz * 7.0) * torch.sin(gz * 11.0 - gx * 5.0) * 0.08 * fade
            out = base * (1.0 + grain)
            if look.skyline == "street":
                # A road running away from the camera: dashed centre line, kerbs, pavements.
                dash = (
                    smoothstep(0.09, 0.05, (gx - 0.0).abs()) * (fract(gz / 4.0 + p1) < 0.5).float()
                )
                pavement = smoothstep(4.3, 4.4, gx.abs())
                kerb = smoothstep(0.12, 0.0, (gx.abs() - 4.35).abs())
                line = torch.as_tensor([0.8, 0.75, 0.55], device=gx.device)
                pave = torch.as_tensor([0.22, 0.21, 0.2], device=gx.device)
                out = out + (pave - out) * pavement
                out = out + (line - out) * (dash * fade + kerb * 0.5)
            else:
                seam = (
                    smoothstep(0.04, 0.0, (fract(gx / 1.5) - 0.5).abs() - 0.47)
                    + smoothstep(0.04, 0.0, (fract(gz / 1.5) - 0.5).abs() - 0.47)
                ).clamp(0, 1)
                out = out * (1.0 - 0.35 * seam * fade) + 0.03 * (1.0 - seam) * fade
            return out
        if kind == "snow":
            drift = torch.sin(gx * 0.7 + p0) * torch.sin(gz * 0.5) * 0.05
            return base * (1.0 + drift * fade)
        if kind == "regolith":
            n = (
                torch.sin(gx * 2.1 + p0) * torch.sin(gz * 1.7)
                + torch.sin(gx * 7.0 - gz * 5.0) * 0.3
            )
            return base * (1.0 + n * 0.15 * fade)
        # Studio floor: a faint sheen toward the back of the set.
        return base * (1.0 + 0.05 * torch.sin(gz * 0.3 + p0) * fade)

    def _sea(self, parts: dict, t: float):
        look = self.look
        ground, sky, gx, gz = parts["ground"], parts["sky"], parts["gx"], parts["gz"]
        tg, down, cs, fade, pix, eye = (
            parts["tg"],
            parts["down"],
            parts["cs"],
            parts["fade"],
            parts["pix"],
            parts["eye"],
        )
        p0 = float(self.phase[2])
        shore = (
            look.shore_z
            + 0.6 * torch.sin(gx * 0.22 + p0)
            + 0.25 * torch.sin(gx * 0.8 + t * 0.7)
            + 0.5 * math.sin(t * 0.9 + p0)
        )
        # A pixel's footprint on the ground grows with distance over the grazing angle.
        footprint = (tg * pix / down).clamp(0.02, 5.0)
        rel = gz - shore
        water = smoothstep(-footprint, footprint, rel)
        waves = torch.sin(gx * 1.3 + t * 1.6 + torch.sin(gz * 0.7) * 1.5) * torch.sin(
            gz * 2.2 - t * 1.2
        )
        fresnel = 0.02 + 0.98 * (1.0 - down) ** 5
        # Wind-roughened water reflects a dimmer, broken-up sky than a mirror would.
        fresnel = (fresnel * (0.55 + 0.2 * waves * fade)).clamp(0.0, 1.0)
        # Light scattered back out of the water body: turquoise by day, nearly black at night.
        body = look.sun_color * max(float(look.sun_dir[1]), 0.0) * 0.1 + look.amb_sky * 0.3
        deep = torch.as_tensor(
            body * np.array([0.12, 0.5, 0.6], dtype=np.float32), device=gx.device
        )
        sea = deep + (sky - deep) * fresnel
        # The sun's glitter path: narrow in azimuth, long toward the viewer, broken by waves.
        S = look.sun_dir
        sh = math.hypot(float(S[0]), float(S[2])) or 1.0
        rx, rz = gx - eye[0], gz - eye[1]
        along = (rx * float(S[0]) + rz * float(S[2])) / (sh * torch.sqrt(rx * rx + rz * rz + 1e-6))
        sparkle = (
            0.5 + 0.5 * torch.sin(gx * 7.0 + t * 5.0 + waves * 2.0) * torch.sin(gz * 11.0 - t * 4.0)
        ).clamp(0, 1)
        path = torch.exp((along - 1.0) * 500.0) * torch.exp(down * -4.0)
        glitter = (
            path * sparkle * sparkle * (0.4 + 0.6 * fade) + torch.exp((cs - 1.0) * 300.0) * 0.5
        )
        sea = sea + glitter * torch.as_tensor(look.disc_color * 0.18, device=gx.device)
        foam = (
            smoothstep(0.45, 0.0, rel.abs()) * (0.55 + 0.45 * torch.sin(gx * 3.0 + t * 2.0)) * fade
        )
        foam_col = torch.as_tensor(
            (look.sun_color * max(float(look.sun_dir[1]), 0.0) + look.amb_sky) * 0.85,
            device=gx.device,
        )
        # Wet sand just above the waterline is darker and takes a little sky.
        wet = smoothstep(-2.5, -0.1, rel) * (1.0 - water)
        ground = ground * (1.0 - 0.45 * wet) + sky * (0.12 * wet)
        out = ground + (sea - ground) * water
        out = out + (foam_col - out) * (foam * 0.8)
        return out, water

    # -----------------------------------------------------------------------------------------
    # Reference plate

    def _plate_frame(self, cam: CameraFrame) -> torch.Tensor:
        first = next(c for c in self.cameras if c.shot == self.cameras[0].shot)
        if np.allclose(cam.position, first.position) and np.allclose(cam.target, first.target):
            return self.plate.clone()
        # The plate is a picture hung at the first camera's target distance; other cameras see
        # it re-projected, so pans, pushes and orbits move over it plausibly.
        f0, r0, u0, th0, tv0 = first.basis(self.width / self.height)
        dist = float(np.linalg.norm(first.target - first.position))
        xs = self._coords(self.width, 0.5, 1.0)
        ys = self._coords(self.height, 0.5, 1.0)
        dx, dy, dz = self._rays(cam, xs, ys)
        rel = cam.position - first.position
        denom = (dx * f0[0] + dy * f0[1] + dz * f0[2]).clamp(min=1e-3)
        s = (dist - float(rel @ f0)) / denom
        px = rel[0] + s * dx
        py = rel[1] + s * dy
        pz = rel[2] + s * dz
        gx = (px * r0[0] + py * r0[1] + pz * r0[2]) / (dist * th0)
        gy = -(px * u0[0] + py * u0[1] + pz * u0[2]) / (dist * tv0)
        grid = torch.cat([gx, gy], dim=-1).unsqueeze(0)
        src = self.plate.permute(2, 0, 1).unsqueeze(0).float()
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).contiguous()

    # -----------------------------------------------------------------------------------------
    # Objects: primitives, screen boxes, shadows, shading

    def _prims(self, index: int, cam: CameraFrame) -> list[Prim]:
        prims: list[Prim] = []
        for k, obj in enumerate(self.objects):
            centre = self.traj.positions[index, k]
            rot = self.traj.rotations[index, k]
            albedo = np.asarray(obj.color, dtype=np.float32)
            if is_figure(obj):
                prims.extend(self._figure(k, obj, centre, albedo, cam))
                continue
            shape = obj.shape if obj.shape in ("sphere", "box", "cylinder") else "box"
            pattern = _pattern_for(obj)
            prims.append(
                Prim(
                    shape,
                    k,
                    centre,
                    rot,
                    float(obj.size),
                    float(obj.size),
                    albedo,
                    obj.material,
                    pattern,
                )
            )
        return prims

    def _figure(
        self, k: int, obj: SceneObject, centre: np.ndarray, albedo: np.ndarray, cam: CameraFrame
    ):
        """A standing character from cylinders and a sphere, turned to face the camera.

        The head carries the cameo's likeness (when one is supplied), so the same person is
        recognisable in every shot; it turns toward each camera like a billboard would.
        """
        foot = centre[1] - FIGURE_HEIGHT / 2.0
        scale = float(obj.size) / 0.22
        to_cam = cam.position - centre
        yaw = math.atan2(to_cam[0], to_cam[2])
        c, s = math.cos(yaw), math.sin(yaw)
        facing = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        side = facing[:, 0]  # the figure's own left-right, as the camera sees it
        at = lambda dx, y: np.array([centre[0], foot + y, centre[2]]) + side * dx  # noqa: E731
        legs = np.array([0.05, 0.06, 0.1], dtype=np.float32)
        skin = np.array([0.62, 0.38, 0.27], dtype=np.float32)
        torso_r = 0.19 * scale
        head_y = 1.45 + 0.03 + FIGURE_HEAD
        parts = [
            Prim(
                "cylinder",
                k,
                at(-0.09 * scale, 0.41),
                facing,
                0.075 * scale,
                0.41,
                legs,
                "matte",
                "clothes",
            ),
            Prim(
                "cylinder",
                k,
                at(0.09 * scale, 0.41),
                facing,
                0.075 * scale,
                0.41,
                legs,
                "matte",
                "clothes",
            ),
            Prim(
                "cylinder", k, at(0.0, 1.13), facing, torso_r, 0.33, albedo, obj.material, "clothes"
            ),
            Prim(
                "cylinder",
                k,
                at(-(torso_r + 0.06), 1.08),
                facing,
                0.05 * scale,
                0.33,
                albedo,
                obj.material,
                "clothes",
            ),
            Prim(
                "cylinder",
                k,
                at(torso_r + 0.06, 1.08),
                facing,
                0.05 * scale,
                0.33,
                albedo,
                obj.material,
                "clothes",
            ),
        ]
        face = self.faces.get(obj.cameo) if obj.cameo else None
        parts.append(
            Prim(
                "sphere", k, at(0.0, head_y), facing, FIGURE_HEAD, 0.0, skin, "matte", "head", face
            )
        )
        return parts

    def _screen_box(
        self, cam: CameraFrame, points: np.ndarray, pad: int
    ) -> tuple[int, int, int, int] | None:
        px, depth = cam.project(points, self.width, self.height)
        front = depth > NEAR
        if not front.any():
            return None
        if not front.all():
            # Part of it lies behind the camera: what is visible reaches the frame's edge.
            vis = px[front]
            x0, y0 = 0, int(max(0, vis[:, 1].min() - pad))
            return x0, y0, self.width, self.height
        x0 = math.floor(px[:, 0].min()) - pad
        x1 = math.ceil(px[:, 0].max()) + pad
        y0 = math.floor(px[:, 1].min()) - pad
        y1 = math.ceil(px[:, 1].max()) + pad
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.width), min(y1, self.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def _object_box(self, cam: CameraFrame, index: int, k: int):
        obj = self.objects[k]
        c = self.traj.positions[index, k]
        r = bounds_radius(obj)
        if is_figure(obj):
            lo = np.array([c[0] - 0.4, c[1] - FIGURE_HEIGHT / 2, c[2] - 0.4])
            hi = np.array([c[0] + 0.4, c[1] + FIGURE_HEIGHT / 2 + 0.02, c[2] + 0.4])
        else:
            lo, hi = c - r, c + r
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        return self._screen_box(cam, corners, pad=2)

    def _shadow_box(self, cam: CameraFrame, index: int, k: int):
        obj = self.objects[k]
        c = self.traj.positions[index, k]
        r = bounds_radius(obj)
        S = self.look.sun_dir
        sy = max(float(S[1]), 0.05)
        sh = np.array([S[0], 0.0, S[2]], dtype=np.float64)
        norm = np.linalg.norm(sh)
        sh = sh / norm if norm > 1e-6 else np.array([0.0, 0.0, 1.0])
        side = np.array([sh[2], 0.0, -sh[0]])
        top = c[1] + r
        length = top / sy
        penumbra = self.look.penumbra * length + r
        # The footprint: from the contact patch at the base away from the sun, plus penumbra.
        base = np.array([c[0], 0.0, c[2]])
        reach = 2.0 * r + 0.2
        ends = [base - sh * reach, base - sh * (length + penumbra)]
        pts = [e + side * w for e in ends for w in (-(r + penumbra), r + penumbra)]
        pts += [base + sh * reach + side * reach, base + sh * reach - side * reach]
        return self._screen_box(cam, np.array(pts), pad=2)

    def _shadows(self, frame: torch.Tensor, cam: CameraFrame, index: int, fade: float) -> None:
        look = self.look
        boxes = [b for k in range(len(self.objects)) if (b := self._shadow_box(cam, index, k))]
        if not boxes or look.shadow_strength <= 0:
            return
        S = look.sun_dir
        occluders = self._occluders(index)
        direct = look.direct_fraction
        for x0, y0, x1, y1 in _merge(boxes):
            # Shadows here are soft, so they are computed on a 2x2-pixel grid and upsampled.
            w2, h2 = (x1 - x0 + 1) // 2, (y1 - y0 + 1) // 2
            xs = self._coords(w2, x0 + 1.0, 2.0)
            ys = self._coords(h2, y0 + 1.0, 2.0)
            dx, dy, dz = self._rays(cam, xs, ys)
            ox, oy, oz = (float(v) for v in cam.position)
            down = (-dy).clamp(min=1e-4)
            tg = oy / down
            px, pz = ox + tg * dx, oz + tg * dz
            lit = torch.ones_like(px)
            ao = torch.zeros_like(px)
            for occ in occluders:
                o, a = _occlusion(occ, px, pz, S, look.penumbra)
                lit = lit * (1.0 - o * look.shadow_strength)
                ao = ao + a
            pix = 2.0 * math.tan(math.radians(cam.fov_y) / 2.0) / self.height
            ground = smoothstep(0.0, -2.0 * pix, dy)
            factor = 1.0 - direct * (1.0 - lit) - (1.0 - direct) * 0.85 * ao.clamp(0.0, 1.0)
            factor = 1.0 - (1.0 - factor.clamp(0.05, 1.0)) * ground * fade
            if not bool((factor < 0.998).any()):
                continue
            gain = torch.exp(torch.log(factor) * (1.0 / 2.2))
            gain = F.interpolate(
                gain.permute(2, 0, 1).unsqueeze(0),
                scale_factor=2.0,
                mode="bilinear",
                align_corners=False,
            )
            gain = gain[0, 0, : y1 - y0, : x1 - x0].unsqueeze(-1)
            region = frame[y0:y1, x0:x1]
            region.copy_((region.float() * gain + 0.5).clamp_(0, 255).to(torch.uint8))

    def _occluders(self, index: int) -> list[dict]:
        out = []
        for k, obj in enumerate(self.objects):
            c = self.traj.positions[index, k].astype(np.float64)
            rot = self.traj.rotations[index, k]
            s = float(obj.size)
            if is_figure(obj):
                foot = c[1] - FIGURE_HEIGHT / 2
                out.append(
                    {
                        "kind": "capsule",
                        "a": np.array([c[0], foot + s, c[2]]),
                        "b": np.array([c[0], foot + FIGURE_HEIGHT - s, c[2]]),
                        "r": s,
                        "c": c,
                        "rb": 0.45,
                    }
                )
            elif obj.shape == "sphere":
                out.append({"kind": "capsule", "a": c, "b": c, "r": s, "c": c, "rb": s})
            elif obj.shape == "cylinder":
                axis = rot[:, 1] * s
                out.append(
                    {
                        "kind": "capsule",
                        "a": c - axis * 0.8,
                        "b": c + axis * 0.8,
                        "r": s,
                        "c": c,
                        "rb": s * 1.2,
                    }
                )
            else:
                out.append({"kind": "box", "c": c, "rot": rot, "h": s, "rb": s * 1.3})
        return out

    def _objects(
        self, frame: torch.Tensor, cam: CameraFrame, prims: list[Prim], t: float, fade: float
    ) -> None:
        index = round(t * self.fps)
        boxes = [b for k in range(len(self.objects)) if (b := self._object_box(cam, index, k))]
        if not boxes:
            return
        occluders = self._occluders(index)
        area = self.width * self.height
        pix = 2.0 * math.tan(math.radians(cam.fov_y) / 2.0) / self.height
        # Each primitive is traced only inside its own screen box: a figure's box is mostly
        # air between thin limbs, and tracing every part over all of it cost more than the
        # whole background.
        prim_boxes = [self._prim_box(cam, p) for p in prims]
        for x0, y0, x1, y1 in _merge(boxes):
            w, h = x1 - x0, y1 - y0
            rects = []
            for b in prim_boxes:
                if b is None:
                    rects.append(None)
                    continue
                bx0, by0 = max(b[0], x0), max(b[1], y0)
                bx1, by1 = min(b[2], x1), min(b[3], y1)
                if bx1 <= bx0 or by1 <= by0:
                    rects.append(None)
                else:
                    rects.append((bx0 - x0, by0 - y0, bx1 - x0, by1 - y0))
            seen = [p for p, r in zip(prims, rects, strict=True) if r is not None]
            if not seen:
                continue
            # Spheres get analytic edge coverage, so they need one sample per pixel; boxes and
            # cylinders are supersampled 2x2 (unless their box fills much of the frame).
            round_only = all(p.kind == "sphere" for p in seen)
            ss = 1 if round_only or w * h > 0.15 * area else 2
            if ss > 1:
                rects = [r and tuple(v * ss for v in r) for r in rects]
            xs = self._coords(w * ss, x0 + 0.5 / ss, 1.0 / ss)
            ys = self._coords(h * ss, y0 + 0.5 / ss, 1.0 / ss)
            if ss == 1:
                # Composite only the covered pixels: the rest of the box keeps the background.
                # Rays are cast only where a primitive may be, and again for what it covers.
                def rays(where, xs=xs, ys=ys, w=w):
                    if isinstance(where, torch.Tensor):
                        return self._point_rays(cam, xs[where % w], ys[where // w])
                    return self._rays(cam, xs[where[1]], ys[where[0]])

                traced = self._trace(rays, (h, w), cam, prims, occluders, t, pix, rects)
                if traced is None:
                    continue
                idx, color, alpha = traced
                at = (idx // w + y0) * self.width + (idx % w + x0)
                flat = frame.view(-1, 3)
                mixed = flat[at].float() * (1.0 - alpha * fade) + color * (fade * 255.0)
                flat[at] = (mixed + 0.5).clamp_(0, 255).to(torch.uint8)
                continue
            d = self._rays(cam, xs, ys)
            color, alpha = self._shade_objects(d, cam, prims, occluders, t, pix / ss, rects)
            color = color.view(h, ss, w, ss, 3).mean(dim=(1, 3))
            alpha = alpha.view(h, ss, w, ss, 1).mean(dim=(1, 3))
            alpha = alpha * fade
            color = color * fade
            region = frame[y0:y1, x0:x1]
            mixed = region.float() * (1.0 - alpha) + color * 255.0
            region.copy_((mixed + 0.5).clamp_(0, 255).to(torch.uint8))

    def _prim_box(self, cam: CameraFrame, prim: Prim) -> tuple[int, int, int, int] | None:
        """Screen box of one primitive, from the corners of a box that bounds it."""
        if prim.kind == "sphere":
            ext = np.array([prim.size, prim.size, prim.size])
            rot = np.eye(3)
        elif prim.kind == "cylinder":
            ext = np.array([prim.size, prim.half_height, prim.size])
            rot = prim.rot
        else:
            ext = np.array([prim.size, prim.size, prim.size])
            rot = prim.rot
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
        corners = prim.centre + (signs * ext) @ np.asarray(rot, dtype=np.float64).T
        return self._screen_box(cam, corners, pad=2)

    def _shade_objects(
        self,
        d,
        cam: CameraFrame,
        prims: list[Prim],
        occluders,
        t: float,
        pix: float,
        rects: list | None = None,
    ):
        """Premultiplied sRGB colour (h, w, 3) and coverage (h, w, 1) of the nearest primitive.

        ``rects`` gives each primitive's (x0, y0, x1, y1) sample range, or None where it cannot
        be seen; without it every primitive is traced at every sample.
        """
        h, w = d[0].shape[:2]
        color = torch.zeros((h * w, 3), device=d[0].device, dtype=self.dtype)
        alpha = torch.zeros((h * w, 1), device=d[0].device, dtype=self.dtype)

        def rays(where):
            if isinstance(where, torch.Tensor):
                return tuple(x.reshape(-1).index_select(0, where).view(1, -1, 1) for x in d)
            return tuple(x[where] for x in d)

        traced = self._trace(rays, (h, w), cam, prims, occluders, t, pix, rects)
        if traced is not None:
            idx, c, a = traced
            color[idx] = c
            alpha[idx] = a
        return color.view(h, w, 3), alpha.view(h, w, 1)

    def _trace(
        self, rays, shape, cam: CameraFrame, prims: list[Prim], occluders, t, pix: float, rects
    ):
        """Flat indices of the covered samples of an (h, w) grid, with their premultiplied sRGB
        (m, 3) and coverage (m, 1); None when nothing is hit.

        ``rays(where)`` gives unit ray directions x3: (rows, cols) slices give a block of
        shape (h', w', 1); a tensor of flat sample indices gives a row of shape (1, m, 1).
        """
        h, w = shape
        dev = self.device
        o = cam.position.astype(np.float64)
        # One channels-first buffer holds every per-sample term, so the covered samples are
        # gathered at once: best t, coverage, normal (3), albedo (3), winning primitive.
        # Only t and coverage need initialising: the rest is written wherever something is hit,
        # and only those samples are read.
        buf = torch.empty((9, h, w, 1), device=dev, dtype=self.dtype)
        best, coverage = buf[0], buf[1]
        nx, ny, nz = buf[2], buf[3], buf[4]
        albedo, which = buf[5:8, ..., 0].permute(1, 2, 0), buf[8]
        best.fill_(INF)
        coverage.zero_()
        for n, prim in enumerate(prims):
            if rects is None:
                sl = (slice(None), slice(None))
            elif rects[n] is None:
                continue
            else:
                rx0, ry0, rx1, ry1 = rects[n]
                sl = (slice(ry0, ry1), slice(rx0, rx1))
            dx, dy, dz = rays(sl)
            hit = _intersect(prim, o, dx, dy, dz, pix)
            if hit is None:
                continue
            th, hx, hy, hz, lx, ly, lz, cov = hit
            b = best[sl]
            closer = th < b
            if not bool(closer.any()):
                continue
            b.copy_(torch.where(closer, th, b))
            c = coverage[sl]
            # Behind a partly covering edge, the farther surface still shows through.
            c.copy_(torch.where(closer, cov + (1.0 - cov) * c, c))
            for dst, src in ((nx, hx), (ny, hy), (nz, hz)):
                v = dst[sl]
                v.copy_(torch.where(closer, src, v))
            a = albedo[sl]
            a.copy_(torch.where(closer, _albedo(prim, lx, ly, lz, t), a))
            which[sl].masked_fill_(closer, float(n))
        flat = (best < INF * 0.5).view(-1)
        if not bool(flat.any()):
            return None
        # Shade covered samples only, as one row: a figure covers a fraction of its box.
        idx = torch.nonzero(flat).view(-1)
        rows = buf.view(9, -1).index_select(1, idx)
        row = lambda i: rows[i].view(1, -1, 1)  # noqa: E731
        t_hit, cov_c, nx, ny, nz = (row(i) for i in range(5))
        albedo_c = rows[5:8].t().reshape(1, -1, 3)
        dx, dy, dz = rays(idx)
        # Material terms and owning object per primitive, looked up by the winning primitive.
        table = torch.tensor(
            [
                (
                    *(
                        MATERIAL_SHADING["matte"]
                        if p.pattern == "head"
                        else MATERIAL_SHADING.get(p.material, MATERIAL_SHADING["matte"])
                    ),
                    float(p.obj),
                )
                for p in prims
            ],
            dtype=self.dtype,
            device=dev,
        )
        props = table[rows[8].long()].view(1, -1, 6)
        spec_k, shin, f0, metal, opacity, owner = (props[..., i : i + 1] for i in range(6))
        srgb, alpha = self._light(
            cam, o, dx, dy, dz, nx, ny, nz, t_hit, albedo_c, spec_k, shin, f0, metal, opacity,
            owner, cov_c, occluders,
        )  # fmt: skip
        return idx, srgb.view(-1, 3), alpha.view(-1, 1)

    def _light(
        self, cam, o, dx, dy, dz, nx, ny, nz, t_hit, albedo, spec_k, shin, f0, metal, opacity,
        owner, coverage, occluders,
    ):  # fmt: skip
        """Shaded, premultiplied sRGB and coverage of surface samples (one row of them)."""
        look = self.look
        dev = dx.device
        px = float(o[0]) + t_hit * dx
        py = float(o[1]) + t_hit * dy
        pz = float(o[2]) + t_hit * dz
        S = look.sun_dir
        sx, sy, sz = float(S[0]), float(S[1]), float(S[2])
        ndl = (nx * sx + ny * sy + nz * sz).clamp(min=0.0)
        # Shadows from the other objects (a body's own dark side comes from n.l).
        lit = torch.ones_like(dx)
        for k, occ in enumerate(occluders):
            o_k, _ = _occlusion(occ, px, pz, S, look.penumbra, py=py)
            lit = lit * (1.0 - o_k * look.shadow_strength * (owner != k).float())
        # Hemisphere ambient: sky above, ground bounce below, darker where it meets the ground.
        up = ny * 0.5 + 0.5
        amb_sky = torch.as_tensor(look.amb_sky, device=dev)
        amb_ground = torch.as_tensor(
            look.amb_ground + look.albedo * look.sun_color * max(sy, 0.0) * 0.25, device=dev
        )
        ambient = amb_ground + (amb_sky - amb_ground) * up
        contact = 0.55 + 0.45 * smoothstep(0.0, 0.35, py)
        ambient = ambient * contact
        if look.band.any():
            hs = math.hypot(sx, sz) or 1.0
            side = ((nx * sx + nz * sz) / hs).clamp(min=0.0)
            ambient = ambient + side * torch.as_tensor(look.band * 0.35, device=dev)
        sun = torch.as_tensor(look.sun_color, device=dev)
        diffuse = albedo * (ambient + sun * (ndl * lit))
        for rim_dir, rim_col in look.rim:
            rd = (nx * float(rim_dir[0]) + ny * float(rim_dir[1]) + nz * float(rim_dir[2])).clamp(
                min=0.0
            )
            diffuse = diffuse + albedo * torch.as_tensor(rim_col, device=dev) * rd * 0.6
        # Blinn-Phong highlight from the key light.
        vx, vy, vz = -dx, -dy, -dz
        hx, hy, hz = sx + vx, sy + vy, sz + vz
        hn = torch.rsqrt(hx * hx + hy * hy + hz * hz + 1e-12)
        ndh = ((nx * hx + ny * hy + nz * hz) * hn).clamp(min=0.0)
        spec = torch.exp(torch.log(ndh.clamp(min=1e-6)) * shin) * spec_k * lit * (ndl > 0).float()
        spec_col = sun * spec
        tint = torch.ones_like(albedo) + (albedo - 1.0) * metal
        # Environment reflection: the sky gradient above the horizon, the lit ground below.
        ndv = (nx * vx + ny * vy + nz * vz).clamp(min=0.0)
        rx = dx + 2.0 * ndv * nx
        ry = dy + 2.0 * ndv * ny
        rz = dz + 2.0 * ndv * nz
        zen = torch.as_tensor(look.zenith, device=dev)
        hor = torch.as_tensor(look.horizon, device=dev)
        env_sky = hor + (zen - hor) * ry.clamp(0.0, 1.0).sqrt()
        env_sky = env_sky + torch.exp(
            ((rx * sx + ry * sy + rz * sz) - 1.0) * look.glow_width
        ) * torch.as_tensor(look.glow, device=dev)
        env_ground = torch.as_tensor(
            look.albedo * (look.sun_color * max(sy, 0.0) + look.amb_sky), device=dev
        )
        env = env_ground + (env_sky - env_ground) * smoothstep(-0.05, 0.05, ry)
        fresnel = f0 + (1.0 - f0) * (1.0 - ndv) ** 5
        reflect = env * tint * fresnel
        radiance = diffuse * (1.0 - metal) + reflect + spec_col * tint
        srgb = self._finish(radiance, dx, dy, dz, cam.basis(1.0)[0])
        alpha = coverage * (opacity + (1.0 - opacity) * fresnel).clamp(0.0, 1.0)
        return srgb * alpha, alpha


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Union overlapping boxes until none overlap, so no pixel is composited twice."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, int, int, int]] = []
        for b in merged:
            for i, m in enumerate(out):
                if b[0] < m[2] and m[0] < b[2] and b[1] < m[3] and m[1] < b[3]:
                    out[i] = (min(b[0], m[0]), min(b[1], m[1]), max(b[2], m[2]), max(b[3], m[3]))
                    changed = True
                    break
            else:
                out.append(b)
        merged = out
    return sorted(merged)


def _pattern_for(obj: SceneObject) -> str:
    label = obj.label
    if label == "beach ball":
        return "beachball"
    if label == "basketball":
        return "basketball"
    if label == "planet":
        return "bands"
    if obj.material == "wood":
        return "planks" if obj.shape == "box" else "staves"
    if obj.material == "stone":
        return "speckle"
    if obj.shape == "sphere":
        return "seams"
    if obj.shape == "box":
        return "bevel"
    if lies_down(obj) and label == "wheel":
        return "tyre"
    return "plain"


def _intersect(prim: Prim, o: np.ndarray, dx, dy, dz, pix: float):
    """Ray vs ``prim``: (t, world normal xyz, local point xyz / size, coverage); t=INF on miss.

    ``pix`` is the angular size of a sample: a sphere's coverage of it is computed from the
    ray's distance to the centre, which anti-aliases its outline without supersampling.
    """
    rel = o - prim.centre
    r = prim.size
    if prim.kind == "sphere":
        b = dx * float(rel[0]) + dy * float(rel[1]) + dz * float(rel[2])
        rr = float(rel @ rel)
        miss2 = (rr - b * b).clamp(min=0.0)  # squared distance from the centre to the ray
        depth = (-b).clamp(min=NEAR)
        footprint = depth * pix
        cov = ((r - miss2.sqrt()) / footprint + 0.5).clamp(0.0, 1.0)
        hit = (cov > 0) & (-b > NEAR)
        if not bool(hit.any()):
            return None
        disc = (r * r - miss2).clamp(min=0.0)
        # Rays that graze past the rim shade as the rim itself (closest approach).
        t = -b - disc.sqrt()
        t = torch.where(hit, t, torch.full_like(t, INF))
        px = float(rel[0]) + t * dx
        py = float(rel[1]) + t * dy
        pz = float(rel[2]) + t * dz
        inv = torch.rsqrt((px * px + py * py + pz * pz).clamp(min=1e-12))
        wx, wy, wz = px * inv, py * inv, pz * inv
        R = prim.rot  # world = R @ local, so local = R^T @ world
        lx = wx * float(R[0, 0]) + wy * float(R[1, 0]) + wz * float(R[2, 0])
        ly = wx * float(R[0, 1]) + wy * float(R[1, 1]) + wz * float(R[2, 1])
        lz = wx * float(R[0, 2]) + wy * float(R[1, 2]) + wz * float(R[2, 2])
        return t, wx, wy, wz, lx, ly, lz, cov
    R = prim.rot
    ol = R.T @ rel
    dlx = dx * float(R[0, 0]) + dy * float(R[1, 0]) + dz * float(R[2, 0])
    dly = dx * float(R[0, 1]) + dy * float(R[1, 1]) + dz * float(R[2, 1])
    dlz = dx * float(R[0, 2]) + dy * float(R[1, 2]) + dz * float(R[2, 2])
    if prim.kind == "box":
        h = prim.size
        tn = torch.full_like(dx, -INF)
        tf = torch.full_like(dx, INF)
        axes = []
        for oc, dc in ((float(ol[0]), dlx), (float(ol[1]), dly), (float(ol[2]), dlz)):
            inv = 1.0 / torch.where(dc.abs() < 1e-9, torch.full_like(dc, 1e-9), dc)
            t1 = (-h - oc) * inv
            t2 = (h - oc) * inv
            near = torch.minimum(t1, t2)
            tn = torch.maximum(tn, near)
            tf = torch.minimum(tf, torch.maximum(t1, t2))
            axes.append(near)
        ok = (tf >= tn) & (tn > NEAR)
        if not bool(ok.any()):
            return None
        t = torch.where(ok, tn, torch.full_like(tn, INF))
        n_local = []
        for near, dc in zip(axes, (dlx, dly, dlz), strict=True):
            n_local.append(torch.where(near >= tn, -torch.sign(dc), torch.zeros_like(dc)))
        lx = (float(ol[0]) + t * dlx) / h
        ly = (float(ol[1]) + t * dly) / h
        lz = (float(ol[2]) + t * dlz) / h
    else:  # cylinder along local y
        hh = prim.half_height
        a = (dlx * dlx + dlz * dlz).clamp(min=1e-12)
        b = dlx * float(ol[0]) + dlz * float(ol[2])
        c = float(ol[0] ** 2 + ol[2] ** 2) - r * r
        disc = b * b - a * c
        ts = (-b - disc.clamp(min=0.0).sqrt()) / a
        ys = float(ol[1]) + ts * dly
        side = (disc > 0) & (ys.abs() <= hh) & (ts > NEAR)
        cap_y = -torch.sign(dly) * hh
        tc = (cap_y - float(ol[1])) / torch.where(dly.abs() < 1e-9, torch.full_like(dly, 1e-9), dly)
        xc = float(ol[0]) + tc * dlx
        zc = float(ol[2]) + tc * dlz
        cap = (xc * xc + zc * zc <= r * r) & (tc > NEAR)
        ts = torch.where(side, ts, torch.full_like(ts, INF))
        tc = torch.where(cap, tc, torch.full_like(tc, INF))
        t = torch.minimum(ts, tc)
        if not bool((t < INF * 0.5).any()):
            return None
        on_side = ts <= tc
        lx0 = float(ol[0]) + t * dlx
        ly0 = float(ol[1]) + t * dly
        lz0 = float(ol[2]) + t * dlz
        n_local = [
            torch.where(on_side, lx0 / r, torch.zeros_like(lx0)),
            torch.where(on_side, torch.zeros_like(ly0), -torch.sign(dly)),
            torch.where(on_side, lz0 / r, torch.zeros_like(lz0)),
        ]
        lx, ly, lz = lx0 / r, ly0 / max(hh, 1e-6), lz0 / r
    # Back to world space: n = R @ n_local.
    wx = n_local[0] * float(R[0, 0]) + n_local[1] * float(R[0, 1]) + n_local[2] * float(R[0, 2])
    wy = n_local[0] * float(R[1, 0]) + n_local[1] * float(R[1, 1]) + n_local[2] * float(R[1, 2])
    wz = n_local[0] * float(R[2, 0]) + n_local[1] * float(R[2, 1]) + n_local[2] * float(R[2, 2])
    return t, wx, wy, wz, lx, ly, lz, (t < INF * 0.5).to(dx.dtype)


def _albedo(prim: Prim, lx, ly, lz, t: float) -> torch.Tensor:
    """Surface colour (linear) from the primitive's pattern at local coordinates."""
    dev = lx.device
    base = torch.as_tensor(prim.albedo, device=dev)
    p = prim.pattern
    if p == "seams":
        # Two faint seams make a spinning ball read as spinning.
        seam = torch.maximum(smoothstep(0.06, 0.02, ly.abs()), smoothstep(0.06, 0.02, lx.abs()))
        return base * (1.0 - 0.35 * seam)
    if p == "beachball":
        wedge = torch.floor((torch.atan2(lx, lz) / math.pi + 1.0) * 3.0) % 6
        colors = torch.as_tensor(
            [
                [0.8, 0.02, 0.02],
                [0.85, 0.85, 0.85],
                [0.02, 0.1, 0.7],
                [0.9, 0.7, 0.02],
                [0.85, 0.85, 0.85],
                [0.02, 0.5, 0.1],
            ],
            device=dev,
        )
        out = colors[wedge.long().clamp(0, 5).squeeze(-1)]
        cap = smoothstep(0.8, 0.85, ly.abs())
        return out + (torch.as_tensor([0.85, 0.85, 0.85], device=dev) - out) * cap
    if p == "basketball":
        line = torch.minimum(
            torch.minimum(smoothstep(0.05, 0.02, ly.abs()), torch.ones_like(ly)),
            torch.ones_like(ly),
        )
        line = torch.maximum(line, smoothstep(0.05, 0.02, lx.abs()))
        line = torch.maximum(line, smoothstep(0.05, 0.02, (lz.abs() - 0.7).abs()))
        return base * (1.0 - 0.9 * line)
    if p == "bands":
        bands = 0.5 + 0.5 * torch.sin(ly * 9.0 + torch.sin(lx * 4.0) * 0.8)
        return base * (0.7 + 0.5 * bands)
    if p == "planks":
        planks = smoothstep(0.06, 0.0, (fract(ly * 1.5 + 0.5) - 0.5).abs() - 0.44)
        grain = 0.9 + 0.1 * torch.sin(lx * 40.0 + torch.sin(lz * 9.0) * 2.0)
        frame = smoothstep(
            0.8,
            0.86,
            torch.maximum(
                torch.minimum(lx.abs(), ly.abs()),
                torch.minimum(torch.maximum(lx.abs(), ly.abs()), lz.abs()),
            ),
        )
        return base * grain * (1.0 - 0.45 * planks) * (1.0 - 0.3 * frame)
    if p == "staves":
        hoops = smoothstep(0.06, 0.0, (ly.abs() - 0.6).abs())
        staves = smoothstep(0.1, 0.0, (fract(torch.atan2(lx, lz) * 3.0) - 0.5).abs() - 0.4)
        out = base * (0.9 + 0.1 * torch.sin(ly * 30.0)) * (1.0 - 0.3 * staves)
        metal = torch.as_tensor([0.15, 0.15, 0.16], device=dev)
        return out + (metal - out) * hoops
    if p == "speckle":
        n = (
            torch.sin(lx * 23.0 + ly * 7.0)
            * torch.sin(ly * 19.0 - lz * 11.0)
            * torch.sin(lz * 17.0 + lx * 5.0)
        )
        return base * (0.85 + 0.3 * n)
    if p == "bevel":
        second = torch.minimum(
            torch.maximum(lx.abs(), ly.abs()),
            torch.maximum(torch.minimum(lx.abs(), ly.abs()), lz.abs()),
        )
        return base * (1.0 - 0.25 * smoothstep(0.86, 0.97, second))
    if p == "tyre":
        hub = smoothstep(0.55, 0.5, (lx * lx + lz * lz).sqrt()) * smoothstep(0.9, 0.98, ly.abs())
        return base + (torch.as_tensor([0.5, 0.5, 0.52], device=dev) - base) * hub
    if p == "clothes":
        return base * (0.92 + 0.08 * torch.sin(ly * 12.0))
    if p == "head":
        return _head(prim, lx, ly, lz)
    return base.expand((*lx.shape[:2], 3))


def _head(prim: Prim, lx, ly, lz) -> torch.Tensor:
    """A head: the cameo's picture on the side facing the camera, hair behind and on top."""
    dev = lx.device
    skin = torch.as_tensor(prim.albedo, device=dev)
    hair = torch.as_tensor([0.05, 0.03, 0.02], device=dev)
    front = smoothstep(0.05, 0.45, lz)
    if prim.face is not None:
        tex = prim.face
        size = tex.shape[0]
        u = ((lx * 0.5 + 0.5) * (size - 1)).round().clamp(0, size - 1).long()
        v = ((0.5 - ly * 0.5) * (size - 1)).round().clamp(0, size - 1).long()
        face = tex[v.squeeze(-1), u.squeeze(-1)]
    else:
        # No likeness supplied: a neutral face (eyes and mouth) so the figure still reads.
        eyes = smoothstep(0.13, 0.08, ((lx.abs() - 0.32) ** 2 + (ly - 0.18) ** 2).sqrt())
        mouth = smoothstep(0.05, 0.02, (ly + 0.35).abs()) * smoothstep(0.3, 0.25, lx.abs())
        face = skin * (1.0 - 0.85 * torch.maximum(eyes, mouth))
    top = smoothstep(0.55, 0.75, ly)
    head = hair + (face - hair) * front
    return head + (hair - head) * top * (1.0 - front * 0.6)


def _occlusion(occ: dict, px, pz, S: np.ndarray, penumbra: float, py=None):
    """Soft occlusion (0..1) of the key light at points, and ambient occlusion near the base."""
    sx, sy, sz = float(S[0]), float(S[1]), float(S[2])
    py = torch.zeros_like(px) if py is None else py
    c = occ["c"]
    if occ["kind"] == "capsule":
        a, b, r = occ["a"], occ["b"], occ["r"]
        e = b - a
        ee = float(e @ e)
        wx, wy, wz = px - float(a[0]), py - float(a[1]), pz - float(a[2])
        if ee < 1e-12:
            s = -(wx * sx + wy * sy + wz * sz)
            u = torch.zeros_like(px)
        else:
            le = sx * float(e[0]) + sy * float(e[1]) + sz * float(e[2])
            denom = max(ee - le * le, 1e-9)
            dw = wx * sx + wy * sy + wz * sz
            ew = wx * float(e[0]) + wy * float(e[1]) + wz * float(e[2])
            u = ((ew - le * dw) / denom).clamp(0.0, 1.0)
            s = u * le - dw
        s = s.clamp(min=0.0)
        qx = wx + s * sx - u * float(e[0])
        qy = wy + s * sy - u * float(e[1])
        qz = wz + s * sz - u * float(e[2])
        dist = (qx * qx + qy * qy + qz * qz).sqrt()
        width = penumbra * s + 0.015
        shadow = smoothstep(0.0, 1.0, (r + width - dist) / (2.0 * width)) * (s > 0).float()
    else:
        rot, h = occ["rot"], occ["h"]
        rel_x, rel_y, rel_z = px - float(c[0]), py - float(c[1]), pz - float(c[2])
        tn = torch.full_like(px, -INF)
        tf = torch.full_like(px, INF)
        for i in range(3):
            axis = rot[:, i]
            oc = rel_x * float(axis[0]) + rel_y * float(axis[1]) + rel_z * float(axis[2])
            dc = sx * float(axis[0]) + sy * float(axis[1]) + sz * float(axis[2])
            if abs(dc) < 1e-9:
                inside = (oc.abs() <= h).float()
                tn = torch.where(inside > 0, tn, torch.full_like(tn, INF))
                continue
            t1 = (-h - oc) / dc
            t2 = (h - oc) / dc
            tn = torch.maximum(tn, torch.minimum(t1, t2))
            tf = torch.minimum(tf, torch.maximum(t1, t2))
        chord = tf - tn.clamp(min=0.0)
        mid = ((tn + tf) * 0.5).clamp(min=0.0)
        width = penumbra * mid + 0.02
        shadow = smoothstep(0.0, 1.0, chord / (2.0 * width)) * (tf > 0).float()
    rb = occ["rb"]
    cx, cy, cz = float(c[0]), float(c[1]), float(c[2])
    ddx, ddy, ddz = cx - px, cy - py, cz - pz
    d2 = (ddx * ddx + ddy * ddy + ddz * ddz).clamp(min=1e-6)
    ao = (rb * rb / d2) * (ddy.clamp(min=0.0) / d2.sqrt())
    return shadow, ao.clamp(0.0, 1.0)
