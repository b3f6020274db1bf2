"""Speech in the recording: a voice-activity detector, and the digits read aloud.

The detector is spectral: 20 ms frames whose energy in the voice band (250-4000 Hz) stands
9 dB over the recording's own noise floor and whose spectrum is not flat (speech has formants
and harmonics; hiss, hum and wind are flat or a single line) count as voiced. Voiced frames
closer than 120 ms form one burst; a digit read aloud is one or two bursts.

The digits are recognised by PocketSphinx, whose wheel ships the US English acoustic model and
dictionary (nothing is downloaded). The search is a grammar of exactly as many digit words as
were challenged, so the recogniser cannot insert or drop words, only pick which digit each
spoken word sounds most like; an exact match of six random digits is strong evidence, anything
less is left to a person.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

FRAME_S = 0.02
HOP_S = 0.01
BAND = (250.0, 4000.0)
OVER_FLOOR_DB = 9.0
ABSOLUTE_FLOOR_DB = -55.0  # dBFS: quieter than this is silence whatever the floor
FLATNESS_MAX = 0.45
MERGE_GAP_S = 0.12
MIN_BURST_S = 0.06

WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


@dataclass
class Speech:
    voiced_s: float
    bursts: list[tuple[float, float]]
    floor_db: float


def voice_activity(audio: np.ndarray, rate: int, *, start: float, end: float) -> Speech:
    """Voiced time and bursts between ``start`` and ``end`` (seconds)."""
    frame, hop = int(FRAME_S * rate), int(HOP_S * rate)
    if audio.size < frame:
        return Speech(0.0, [], ABSOLUTE_FLOOR_DB)
    count = 1 + (audio.size - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    window = np.hanning(frame)
    power = np.abs(np.fft.rfft(audio[index].astype(np.float64) * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1.0 / rate)
    band = power[:, (freqs >= BAND[0]) & (freqs <= BAND[1])] + 1e-12
    # Mean square of the in-band signal by Parseval, in dB full scale.
    level = 10 * np.log10(2 * band.sum(axis=1) / (frame * float((window**2).sum())))
    flatness = np.exp(np.log(band).mean(axis=1)) / band.mean(axis=1)
    floor = float(np.percentile(level, 10))
    threshold = max(floor + OVER_FLOOR_DB, ABSOLUTE_FLOOR_DB)
    voiced = (level > threshold) & (flatness < FLATNESS_MAX)
    times = (np.arange(count) * hop + frame / 2) / rate
    voiced &= (times >= start) & (times <= end)
    bursts: list[list[float]] = []
    for t in times[voiced]:
        if bursts and t - bursts[-1][1] <= MERGE_GAP_S:
            bursts[-1][1] = t
        else:
            bursts.append([t, t])
    kept = [(a, b + HOP_S) for a, b in bursts if b + HOP_S - a >= MIN_BURST_S]
    return Speech(
        voiced_s=float(voiced.sum() * HOP_S),
        bursts=[(round(float(a), 2), round(float(b), 2)) for a, b in kept],
        floor_db=round(floor, 1),
    )


def judge_speech(speech: Speech, digits: int) -> tuple[str, str]:
    detail = (
        f"{speech.voiced_s:.2f} s of speech in {len(speech.bursts)} bursts where "
        f"{digits} digits were expected."
    )
    if speech.voiced_s < 0.05 * digits or not speech.bursts:
        return "fail", "No speech where the digits were expected."
    if speech.voiced_s >= 0.12 * digits and (digits + 1) // 2 <= len(speech.bursts) <= 2 * digits:
        return "pass", detail
    return "review", detail


# -- digits ----------------------------------------------------------------------------------

_LOCK = threading.Lock()


@functools.cache
def _decoder():
    from pocketsphinx import Decoder

    return Decoder(lm=None, loglevel="FATAL", samprate=16000)


def recognise_digits(audio: np.ndarray, rate: int, *, count: int) -> list[str] | None:
    """The ``count`` digits heard, or None when the recogniser found no reading."""
    if rate != 16000:
        raise ValueError("the recogniser's model is for 16 kHz audio")
    grammar = (
        "#JSGF V1.0;\ngrammar digits;\n"
        f"public <utterance> = {' '.join(['<digit>'] * count)};\n"
        f"<digit> = {' | '.join(WORDS)};\n"
    )
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
    # The decoder is loaded once and is not thread-safe; readings are short.
    with _LOCK:
        decoder = _decoder()
        decoder.add_jsgf_string(f"digits{count}", grammar)
        decoder.activate_search(f"digits{count}")
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
    if hypothesis is None or not hypothesis.hypstr:
        return None
    return [WORDS[w] for w in hypothesis.hypstr.split() if w in WORDS]


def _common_in_order(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


def judge_digits(heard: list[str] | None, challenged: list[str]) -> tuple[str, str]:
    wanted = "".join(challenged)
    if heard is None:
        return "review", "The recogniser could not read the digits; a person should listen."
    said = "".join(heard)
    if heard == list(challenged):
        return "pass", f"Heard {said}, as challenged."
    if _common_in_order(heard, list(challenged)) * 2 >= len(challenged):
        return "review", f"Heard {said}; the challenge was {wanted}. A person should listen."
    return "fail", f"Heard {said}; the challenge was {wanted}."
