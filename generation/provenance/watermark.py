"""Invisible video watermark: a 64-bit clip payload that survives H.264, rescaling, trims and
small crops, for the C2PA soft binding (``SoftBinding(alg=ALG, value=payload)``).

Design, and why:

- **Payload coding.** 64 payload bits + CRC-32 (96 information bits, 6 zero tail bits) go
  through a rate-1/2, constraint-length-7 convolutional code (the NASA/Voyager polynomials
  171/133), decoded with soft-decision Viterbi: 204 coded bits. The code buys ~5 dB over
  uncoded bits; the CRC makes a wrong decode (wrong key, unmarked video) return ``None``
  except with probability 2**-32.
- **Spread spectrum on a coarse grid.** The frame is divided into a 64x64 grid of cells
  (relative to the frame, so any resolution maps to the same grid). A keyed PRNG gives every
  cell a sign; a quarter of the cells carry a fixed *pilot* (used to find scale and offset
  after a crop), the rest are spread over the 204 coded bits (~15 cells per bit, interleaved
  across the frame so a damaged region hurts every bit a little instead of some bits fully).
  The grid of cell values is upsampled bilinearly to the frame: the mark has no energy above
  ~1/2 cycle per cell (11x20 pixels at 720x1280), which is what H.264's quantiser and any
  downscaler keep.
- **Luma only, texture-adaptive.** The same delta is added to R, G and B, i.e. to luma only
  (chroma is subsampled and quantised harder, so it would carry little anyway). The strength of
  each cell follows the local texture of the frame (std of luma in the cell), bounded to
  0.5x-2x, then the whole frame is rescaled to a fixed RMS in 8-bit levels: ``strength`` is
  that RMS, so PSNR ~= 20*log10(255/strength) whatever the content (2.6 -> ~39.8 dB).
- **Every frame, voting by summation.** The mark is the same in every frame, so the soft
  decisions summed over frames equal the correlation of the frames' mean: decoding averages
  the luma of all frames once (moving content averages out, the mark adds up), which is what
  makes decoding cheap and makes any trim (any subset of frames) work.
- **Crop tolerance.** The decoder does not know how the picture was cropped, so it searches
  the kept fraction of height and width (0.80-1.00 in 0.02 steps) and, for each, every offset
  at half-cell resolution, by FFT cross-correlation with the pilot; the best normalised
  correlation fixes the alignment, then the data cells are read there. A crop keeping less
  than 80% of either side, a rotation, or a change of aspect ratio by stretching, is not
  searched for.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

ALG = "com.montage.wm.ss64"
PAYLOAD_BYTES = 8
GRID = 64
# Decoder works at two samples per cell: enough for half-cell offsets in the crop search.
RES = 2 * GRID
PILOT_FRACTION = 0.25
DEFAULT_STRENGTH = 2.6
# Texture adaptation bounds: a flat sky still carries half the mean strength (else it carries
# nothing), a busy region at most twice it (more would show as blotches on edges).
MIN_GAIN, MAX_GAIN = 0.5, 2.0
# Kept fraction of each side searched after a crop.
CROP_FRACTIONS = tuple(round(1.0 - 0.02 * k, 2) for k in range(11))
# Convolutional code: constraint length 7, generators 171 and 133 (octal).
K = 7
GENERATORS = (0o171, 0o133)
INFO_BITS = 8 * PAYLOAD_BYTES + 32
CODED_BITS = 2 * (INFO_BITS + K - 1)
# Frames that share one texture-adapted delta (a third of a second at 24 fps).
CHUNK = 8
# Luma from RGB with BT.709 weights, the matrix the encoder tags.
LUMA = (0.2126, 0.7152, 0.0722)


@dataclass(frozen=True)
class DecodeResult:
    """What ``decode`` found. ``payload`` is ``None`` unless the CRC matched.

    ``confidence`` in [0.5, 1] estimates the coded-bit accuracy from the received soft bits
    against the re-encoded codeword, as Phi(mean / std) of their signed values; Viterbi fits
    even noise a little, so an unmarked video scores ~0.8, a clean mark 1.0: the CRC, not this
    figure, decides whether there is a payload. ``bit_errors_estimate``
    counts coded bits whose hard decision disagrees with that codeword (out of ``CODED_BITS``).
    ``sync`` is the pilot's normalised correlation at the chosen alignment and ``crop`` the
    (top, left, height, width) fraction of the original frame the input was found to cover.
    """

    payload: bytes | None
    confidence: float
    bit_errors_estimate: int
    sync: float = 0.0
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)


def clip_payload(clip_id: str, *, attempt: int = 0) -> bytes:
    """The 64-bit payload for ``clip_id``: a hash, so payloads carry no guessable sequence.

    With n clips, two share a payload with probability ~n**2 / 2**65 (~3e-8 at a million). The
    caller stores the payload under a unique constraint and, on the rare conflict, retries with
    ``attempt + 1``; the stored mapping, not the hash, is what resolves a payload to a clip.
    """
    digest = hashlib.blake2b(
        f"{clip_id}:{attempt}".encode(), digest_size=PAYLOAD_BYTES, person=b"montage-wm-clip"
    )
    return digest.digest()


# --- error correction ---------------------------------------------------------------------


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.uint8)


def _with_crc(payload: bytes) -> bytes:
    return payload + zlib.crc32(payload).to_bytes(4, "big")


@cache
def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """``out[state, bit]`` (2 coded bits as 0/1) and ``next[state, bit]`` for the 64 states,
    where a state holds the last K-1 input bits, newest in the lowest bit."""
    states = np.arange(1 << (K - 1))
    out = np.zeros((len(states), 2, 2), dtype=np.int8)
    nxt = np.zeros((len(states), 2), dtype=np.int64)
    for bit in (0, 1):
        reg = (states << 1) | bit
        for j, gen in enumerate(GENERATORS):
            out[:, bit, j] = np.array([bin(r & gen).count("1") & 1 for r in reg])
        nxt[:, bit] = reg & ((1 << (K - 1)) - 1)
    return out, nxt


def _conv_encode(info: np.ndarray) -> np.ndarray:
    out, nxt = _trellis()
    bits = np.concatenate([info, np.zeros(K - 1, dtype=np.uint8)])
    coded = np.empty((len(bits), 2), dtype=np.uint8)
    state = 0
    for i, bit in enumerate(bits):
        coded[i] = out[state, bit]
        state = nxt[state, bit]
    return coded.reshape(-1)


def _codeword(payload: bytes) -> np.ndarray:
    if len(payload) != PAYLOAD_BYTES:
        raise ValueError(f"payload must be {PAYLOAD_BYTES} bytes, got {len(payload)}")
    return _conv_encode(_bits(_with_crc(payload)))


def _viterbi(soft: np.ndarray) -> np.ndarray:
    """Maximum-likelihood information bits for soft coded values (positive means 1)."""
    out, _ = _trellis()
    n_states = out.shape[0]
    steps = len(soft) // 2
    pairs = soft.reshape(steps, 2).astype(np.float64)
    signs = 2.0 * out - 1.0  # (state, bit, 2)
    # Predecessors of state ns: (ns >> 1) and (ns >> 1) | 32, both with input bit ns & 1.
    ns = np.arange(n_states)
    prev = np.stack([ns >> 1, (ns >> 1) | (n_states >> 1)])  # (2, states)
    inbit = ns & 1
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    choice = np.empty((steps, n_states), dtype=np.int8)
    for t in range(steps):
        branch = signs[prev, inbit] @ pairs[t]  # (2, states)
        cand = metric[prev] + branch
        pick = np.argmax(cand, axis=0)
        choice[t] = pick
        metric = cand[pick, ns]
    # The zero tail drives the encoder back to state 0.
    state = 0
    bits = np.empty(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = state & 1
        state = prev[choice[t, state], state]
    return bits[: steps - (K - 1)]


# --- keyed patterns ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    signs: np.ndarray  # (GRID, GRID) float32 of +-1
    pilot: np.ndarray  # (GRID, GRID) bool
    bit_of_cell: np.ndarray  # (GRID, GRID) int64, coded-bit index, -1 on pilot cells
    pilot_ref: torch.Tensor  # (RES, RES) high-passed pilot as the decoder sees it


@cache
def _pattern(key: bytes) -> _Pattern:
    seed = int.from_bytes(hashlib.blake2b(key, digest_size=16, person=b"montage-wm-key").digest())
    rng = np.random.default_rng(seed)
    cells = GRID * GRID
    signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=cells)
    order = rng.permutation(cells)
    n_pilot = int(cells * PILOT_FRACTION)
    pilot = np.zeros(cells, dtype=bool)
    pilot[order[:n_pilot]] = True
    bit_of_cell = np.full(cells, -1, dtype=np.int64)
    # order is a random permutation, so the data cells of each bit are scattered over the frame.
    bit_of_cell[order[n_pilot:]] = np.arange(cells - n_pilot) % CODED_BITS
    pilot_grid = torch.from_numpy((signs * pilot).reshape(1, 1, GRID, GRID))
    pilot_ref = _highpass(_upsample(pilot_grid, RES, RES))[0, 0]
    return _Pattern(
        signs=signs.reshape(GRID, GRID),
        pilot=pilot.reshape(GRID, GRID),
        bit_of_cell=bit_of_cell.reshape(GRID, GRID),
        pilot_ref=pilot_ref,
    )


def _upsample(grid: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)


def _highpass(image: torch.Tensor) -> torch.Tensor:
    """Image minus its 5x5 local mean (at decoder resolution, 2.5 cells): removes most of the
    picture's own low-frequency energy, which is noise to the correlator, and keeps the mark."""
    blur = F.avg_pool2d(image, 5, stride=1, padding=2, count_include_pad=False)
    return image - blur


# --- embedding ---------------------------------------------------------------------------


def embed(
    frames: np.ndarray, payload: bytes, key: bytes, strength: float = DEFAULT_STRENGTH
) -> np.ndarray:
    """Mark ``frames`` (uint8 RGB, (T, H, W, 3)) in place with ``payload`` (8 bytes) under
    ``key``; returns ``frames``. ``strength`` is the mark's RMS in 8-bit levels."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4:
        raise ValueError("frames must be a uint8 (T, H, W, 3) numpy array")
    if frames.shape[-1] != 3:
        raise ValueError(f"frames must have 3 channels, got {frames.shape}")
    if not frames.flags.writeable:
        raise ValueError("frames must be writeable (they are marked in place)")
    height, width = frames.shape[1:3]
    if height < GRID or width < GRID:
        raise ValueError(f"frames must be at least {GRID}x{GRID}, got {width}x{height}")
    pattern = _pattern(key)
    coded = _codeword(payload).astype(np.float32) * 2 - 1
    cell_value = np.where(pattern.pilot, 1.0, coded[pattern.bit_of_cell]) * pattern.signs
    base = torch.from_numpy(cell_value.astype(np.float32))[None, None]
    scratch = np.empty((height, width, 3), dtype=np.uint8)
    for start in range(0, len(frames), CHUNK):
        chunk = frames[start : start + CHUNK]
        raise_by, lower_by = _delta(chunk[len(chunk) // 2], base, strength)
        # Saturating uint8 arithmetic in place: a quarter of the time of widening to int16,
        # which is most of the embedding cost at 720p.
        for frame in chunk:
            np.minimum(frame, lower_by, out=scratch)
            np.subtract(frame, scratch, out=frame)
            np.subtract(255, frame, out=scratch)
            np.minimum(scratch, raise_by, out=scratch)
            np.add(frame, scratch, out=frame)
    return frames


def _delta(frame: np.ndarray, base: torch.Tensor, strength: float):
    """The mark for frames like ``frame`` as two uint8 (H, W, 3) arrays, the levels to add and
    the levels to subtract, at RMS ``strength``.

    One delta serves a chunk of frames: texture moves little in a third of a second, and the
    upsampling costs more than adding the result.
    """
    height, width = frame.shape[:2]
    with torch.inference_mode():
        gain = _texture_gain(frame)
        delta = _upsample(gain * base, height, width)[0, 0]
        rms = float(delta.square().mean().sqrt())
        delta = (delta * (strength / max(rms, 1e-6))).round_().to(torch.int16).numpy()
    raise_by = np.clip(delta, 0, 255).astype(np.uint8)
    lower_by = np.clip(-delta, 0, 255).astype(np.uint8)
    shape = (height, width, 3)
    return (
        np.ascontiguousarray(np.broadcast_to(raise_by[..., None], shape)),
        np.ascontiguousarray(np.broadcast_to(lower_by[..., None], shape)),
    )


def _texture_gain(frame: np.ndarray) -> torch.Tensor:
    """Per-cell strength (1, 1, GRID, GRID) from the standard deviation of green, luma's main
    term, in each cell; mean ~1.

    Measured on a 4x-subsampled view: the texture at cell scale (11x20 pixels at 720p) is
    what masks a cell-sized change, and reading a sixteenth of the pixels keeps embedding cheap.
    """
    green = torch.from_numpy(np.ascontiguousarray(frame[::4, ::4, 1])).to(torch.float32)
    green = green[None, None]
    mean = F.adaptive_avg_pool2d(green, GRID)
    sq = F.adaptive_avg_pool2d(green.square(), GRID)
    std = (sq - mean.square()).clamp_min(0).sqrt()
    level = std.mean() + 1.0
    return ((std + 1.0) / level).clamp_(MIN_GAIN, MAX_GAIN)


# --- decoding ----------------------------------------------------------------------------


def mean_luma(frames: np.ndarray) -> torch.Tensor:
    """Mean luma of all frames, (1, 1, H, W) float32: the summed soft decisions of every frame
    in one image, because the mark is identical in each and correlation is linear."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError("frames must be a (T, H, W, 3) numpy array")
    if len(frames) == 0:
        raise ValueError("no frames to decode")
    # uint16 holds the sum of 257 uint8 frames; np.add into it is ~15x faster than torch's
    # widening sum, and the mean is the whole cost of decoding.
    total = np.zeros(frames.shape[1:], dtype=np.float64)
    partial = np.zeros(frames.shape[1:], dtype=np.uint16)
    for start in range(0, len(frames), 257):
        partial.fill(0)
        for frame in frames[start : start + 257]:
            np.add(partial, frame, out=partial, casting="unsafe")
        total += partial
    luma = (total @ np.array(LUMA)) / len(frames)
    return torch.from_numpy(luma.astype(np.float32))[None, None]


class LumaMean:
    """The mean luma of frames added one at a time, for decoding a video as it is decoded
    (memory for one frame, not the whole clip). Frames must all have the same size."""

    def __init__(self) -> None:
        self._total: np.ndarray | None = None
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        """Adds an RGB frame (H, W, 3) or a luma plane (H, W), such as a decoder's Y plane
        (luma up to scale and offset, which decoding does not mind)."""
        if frame.ndim == 3:
            frame = frame.astype(np.float32) @ np.array(LUMA, dtype=np.float32)
        if self._total is None:
            # Integer sums of 8-bit planes are exact and several times faster than float.
            integral = frame.dtype == np.uint8 and frame.ndim == 2
            self._total = np.zeros(frame.shape, dtype=np.uint32 if integral else np.float64)
        elif self._total.shape != frame.shape:
            raise ValueError("frames change size mid-video")
        np.add(self._total, frame, out=self._total, casting="unsafe")
        self.count += 1

    def mean(self) -> torch.Tensor:
        if self._total is None:
            raise ValueError("no frames to decode")
        return torch.from_numpy((self._total / self.count).astype(np.float32))[None, None]


def _whiten(luma: torch.Tensor) -> torch.Tensor:
    """The picture's own still content competes with the mark once frames are averaged (a
    static shot adds the same scene to every frame). Subtracting a local mean about two cells
    wide removes smooth regions, and clipping at a few times the median residual keeps strong
    static edges (a figure against the sky) from outvoting the mark."""
    height, width = luma.shape[-2:]
    ky = 2 * math.ceil(height / GRID) + 1
    kx = 2 * math.ceil(width / GRID) + 1
    padded = F.pad(luma, (kx // 2, kx // 2, ky // 2, ky // 2), mode="replicate")
    detail = luma - _box_mean(padded[0, 0], ky, kx)[None, None]
    limit = float(detail.abs().median()) * 4 + 1e-3
    return detail.clamp(-limit, limit)


def _box_mean(image: torch.Tensor, ky: int, kx: int) -> torch.Tensor:
    """``avg_pool2d(image, (ky, kx), stride=1)`` by summed-area table: constant work per pixel
    instead of ky*kx (a 41x25 window on a 720p frame is ~40x faster this way)."""
    table = F.pad(image.to(torch.float64).cumsum(0).cumsum(1), (1, 0, 1, 0))
    total = table[ky:, kx:] - table[:-ky, kx:] - table[ky:, :-kx] + table[:-ky, :-kx]
    return (total / (ky * kx)).to(image.dtype)


def soft_bits(frames: np.ndarray, key: bytes) -> tuple[np.ndarray, float, tuple]:
    """(soft coded bits, pilot correlation, crop) for ``frames`` under ``key``: the channel's
    output before error correction, for ``decode`` and for measuring raw bit accuracy."""
    return _soft_bits_of_mean(mean_luma(frames), key)


def _soft_bits_of_mean(
    mean: torch.Tensor, key: bytes, fractions: tuple[float, ...] = CROP_FRACTIONS
) -> tuple[np.ndarray, float, tuple]:
    luma = _whiten(mean)
    pattern = _pattern(key)
    with torch.inference_mode():
        sync, crop, canvas, covered = _align(luma, pattern, fractions)
        # Adjoint of the 2x bilinear upsampling, near enough: the mean of each cell's samples.
        cells = F.avg_pool2d(canvas[None, None], 2)[0, 0].numpy()
        weight = F.avg_pool2d(covered[None, None], 2)[0, 0].numpy()
    data = (~pattern.pilot) & (weight > 0.5)
    soft = np.bincount(
        pattern.bit_of_cell[data],
        weights=(cells * pattern.signs)[data],
        minlength=CODED_BITS,
    )
    return soft, sync, crop


def decode(frames: np.ndarray, key: bytes) -> DecodeResult:
    """Read the payload from ``frames`` (uint8 RGB, (T, H, W, 3), any size, any subset of the
    marked frames, up to a 20% crop of each side)."""
    return decode_mean(mean_luma(frames), key)


def decode_mean(mean: torch.Tensor, key: bytes) -> DecodeResult:
    """:func:`decode` from the frames' mean luma (``mean_luma`` or :class:`LumaMean`).

    Most copies are not cropped: the uncropped alignment is tried first, and the search over
    crops (~120 correlations) runs only when that one does not give a valid payload.
    """
    first = _decode_soft(*_soft_bits_of_mean(mean, key, (1.0,)))
    if first.payload is not None:
        return first
    return _decode_soft(*_soft_bits_of_mean(mean, key))


def _decode_soft(soft: np.ndarray, sync: float, crop: tuple) -> DecodeResult:
    info = _viterbi(soft)
    data = np.packbits(info).tobytes()
    payload, crc = data[:PAYLOAD_BYTES], data[PAYLOAD_BYTES:]
    codeword = _conv_encode(info).astype(np.float64) * 2 - 1
    signed = soft * codeword
    spread = float(signed.std())
    snr = float(signed.mean()) / spread if spread > 0 else (np.inf if signed.mean() > 0 else 0.0)
    confidence = 0.5 * (1.0 + math.erf(snr / math.sqrt(2.0)))
    errors = int(np.count_nonzero(np.sign(soft) != codeword))
    ok = zlib.crc32(payload).to_bytes(4, "big") == crc
    return DecodeResult(
        payload=payload if ok else None,
        confidence=confidence,
        bit_errors_estimate=errors,
        sync=sync,
        crop=crop,
    )


def _align(luma: torch.Tensor, pattern: _Pattern, fractions: tuple[float, ...] = CROP_FRACTIONS):
    """Find which part of the original frame ``luma`` shows: every kept fraction in
    ``CROP_FRACTIONS`` for height and width, every half-cell offset, scored by normalised
    correlation with the pilot. Returns (score, crop, high-passed canvas at RES x RES with the
    input placed where it was found, coverage mask)."""
    ref = pattern.pilot_ref
    ref_sq = ref.square()
    best = (-np.inf, None)
    resized = {}
    for fh in fractions:
        for fw in fractions:
            h, w = round(RES * fh), round(RES * fw)
            if (h, w) not in resized:
                image = F.interpolate(luma, size=(h, w), mode="bilinear", antialias=True)
                resized[(h, w)] = _highpass(image)[0, 0]
            obs = resized[(h, w)]
            corr = _correlate_valid(ref, obs)
            energy = _correlate_valid(ref_sq, torch.ones_like(obs)).clamp_min(1e-6)
            score = corr / (energy.sqrt() * obs.norm().clamp_min(1e-6))
            flat = int(score.argmax())
            value = float(score.reshape(-1)[flat])
            if value > best[0]:
                oy, ox = divmod(flat, score.shape[1])
                best = (value, (oy, ox, h, w))
    value, (oy, ox, h, w) = best
    canvas = torch.zeros(RES, RES)
    covered = torch.zeros(RES, RES)
    canvas[oy : oy + h, ox : ox + w] = resized[(h, w)]
    covered[oy : oy + h, ox : ox + w] = 1.0
    crop = (oy / RES, ox / RES, h / RES, w / RES)
    return value, crop, canvas, covered


def _correlate_valid(big: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """``out[y, x] = sum(big[y:y+h, x:x+w] * small)`` for every placement of ``small`` inside
    ``big``, by FFT."""
    bh, bw = big.shape
    sh, sw = small.shape
    spectrum = torch.fft.rfft2(big) * torch.conj(torch.fft.rfft2(small, s=(bh, bw)))
    full = torch.fft.irfft2(spectrum, s=(bh, bw))
    return full[: bh - sh + 1, : bw - sw + 1]
