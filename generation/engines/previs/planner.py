"""Prompt (or storyboard) -> ScenePlan: what is in the scene, how it moves, where, when, how shot.

Understanding is two-pass. Names in :mod:`.vocab` are matched verbatim (longest phrase first);
every other content word is then compared by meaning with all names of the embeddable kinds
using the packaged MiniLM (:mod:`core.embeddings`), and taken when it is close enough to one
("hops" -> bounces, "woodland" -> forest). When no word names the setting, time of day or mood,
the whole prompt is compared with a short description of each. Every decision, including the
defaults, is recorded in ``ScenePlan.matches`` so a user can see how the prompt was read.

The plan is deterministic for a prompt: no randomness, and the embedding model runs on the CPU.
Objects are then *staged*: given positions and velocities so that what the prompt asks for
happens inside a few metres around the origin within the clip's duration; the renderer frames
the camera on the simulated action.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generation.engines.base import Dialogue, SceneObject, ScenePlan, Shot

from . import vocab
from .physics import ground_for, is_figure, rest_height

CAMERA_MOVES = tuple(vocab.CAMERAS)
DEFAULT_PALETTE = ("white", "red", "blue", "yellow", "green", "orange", "purple", "pink")

_QUOTE_RE = re.compile(r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d")
_HANDLE_RE = re.compile(r"@([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})")
_TOKEN_RE = re.compile(r"@[a-z0-9_][a-z0-9_.-]*|[a-z0-9]+(?:'[a-z]+)?")
_CLAUSE_RE = re.compile(r"[.,;:!?()\n]+|\b(?:then|while|meanwhile|as)\b")
_ADJECTIVE_ENDINGS = ("ing", "ful", "ous", "ive", "al", "ic", "ly", "ed", "est", "er", "less")


@dataclass
class Tag:
    kind: str
    concept: str
    phrase: str
    score: float
    how: str
    index: int  # token position in the clause


@dataclass
class _Obj:
    label: str
    phrase: str
    color: str | None = None
    size: float = 1.0
    material: str | None = None
    motion: str | None = None
    cameo: str | None = None
    proxy_shape: str | None = None
    collide: bool = False
    orbit_target: int | None = None  # index into the object list


# ---------------------------------------------------------------------------------------------
# Names and their embeddings


def _lookup() -> dict[str, list[tuple[str, str]]]:
    table: dict[str, list[tuple[str, str]]] = {}

    def add(kind: str, concept: str, names) -> None:
        for name in names:
            table.setdefault(name, []).append((kind, concept))

    for concept, kind in vocab.OBJECTS.items():
        add("object", concept, kind.names)
    for name in vocab.COLORS:
        add("color", name, [name])
    for name in vocab.SIZES:
        add("size", name, [name])
    for name in vocab.SPEEDS:
        add("speed", name, [name])
    for name, material in vocab.MATERIAL_WORDS.items():
        add("material", material, [name])
    for name in vocab.COUNTS:
        add("count", name, [name])
    for kind, concepts in (
        ("motion", vocab.MOTIONS),
        ("setting", vocab.SETTINGS),
        ("time", vocab.TIMES),
        ("lighting", vocab.LIGHTINGS),
        ("camera", vocab.CAMERAS),
        ("mood", vocab.MOODS),
    ):
        for concept, names in concepts.items():
            add(kind, concept, names)
    return table


LOOKUP = _lookup()
LONGEST_NAME = max(len(name.split()) for name in LOOKUP)


def _names_by_kind() -> dict[str, list[tuple[str, str]]]:
    """(concept, name) pairs per embeddable kind, in a fixed order."""
    out: dict[str, list[tuple[str, str]]] = {}
    out["object"] = [(c, n) for c, k in vocab.OBJECTS.items() for n in k.names]
    for kind, concepts in (
        ("motion", vocab.MOTIONS),
        ("setting", vocab.SETTINGS),
        ("time", vocab.TIMES),
        ("lighting", vocab.LIGHTINGS),
        ("camera", vocab.CAMERAS),
        ("mood", vocab.MOODS),
    ):
        out[kind] = [(c, n) for c, names in concepts.items() for n in names]
    return out


class _Index:
    """Embeddings of every name and scene description, computed once per process."""

    _lock = threading.Lock()
    _ready: _Index | None = None

    def __init__(self) -> None:
        from core.embeddings import embed

        self.entries: list[tuple[str, str, str]] = []  # (kind, concept, name)
        for kind, pairs in _names_by_kind().items():
            self.entries.extend((kind, concept, name) for concept, name in pairs)
        self.names = embed([name for _, _, name in self.entries])
        self.scenes: dict[str, tuple[list[str], np.ndarray]] = {}
        for kind, table in (
            ("setting", vocab.SETTING_SCENES),
            ("time", vocab.TIME_SCENES),
            ("mood", vocab.MOOD_SCENES),
        ):
            keys = list(table)
            self.scenes[kind] = (keys, embed([table[k] for k in keys]))

    @classmethod
    def get(cls) -> _Index:
        if cls._ready is None:
            with cls._lock:
                if cls._ready is None:
                    cls._ready = _Index()
        return cls._ready


def warm_up() -> None:
    """Load the embedding model and embed the vocabulary (a worker does this at start)."""
    _Index.get()


# ---------------------------------------------------------------------------------------------
# Reading a prompt


def _clauses(text: str) -> list[list[str]]:
    out = []
    for part in _CLAUSE_RE.split(text.lower()):
        if part:
            tokens = _TOKEN_RE.findall(part)
            if tokens:
                out.append(tokens)
    return out


def _match_vocabulary(tokens: list[str], camera_voice: bool) -> tuple[list[Tag], list[int]]:
    """Greedy longest-phrase matching. Returns tags and the indices of unmatched tokens."""
    tags: list[Tag] = []
    unmatched: list[int] = []
    i = 0
    while i < len(tokens):
        if tokens[i].startswith("@"):
            tags.append(Tag("cameo", tokens[i][1:], tokens[i], 1.0, "mention", i))
            i += 1
            continue
        for size in range(min(LONGEST_NAME, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + size])
            senses = LOOKUP.get(phrase)
            if not senses:
                continue
            kind, concept = _pick_sense(senses, phrase, camera_voice)
            if kind is None:
                continue
            score = 0.9 if phrase in vocab.WEAK_NAMES else 1.0
            tags.append(Tag(kind, concept, phrase, score, "vocabulary", i))
            i += size
            break
        else:
            unmatched.append(i)
            i += 1
    return tags, unmatched


def _pick_sense(senses, phrase: str, camera_voice: bool):
    kinds = {kind for kind, _ in senses}
    if "camera" in kinds:
        camera = next(c for k, c in senses if k == "camera")
        if camera_voice:
            return "camera", camera
        if phrase not in vocab.CAMERA_NEEDS_CONTEXT:
            return "camera", camera
        senses = [s for s in senses if s[0] != "camera"]
        if not senses:
            return None, None
    if "count" in kinds and len(senses) > 1:
        senses = [s for s in senses if s[0] != "count"]
    return senses[0]


def _is_candidate(token: str) -> bool:
    return (
        len(token) >= 3
        and token.isalpha()
        and token not in vocab.STOPWORDS
        and not token.startswith("@")
    )


def _embed_tags(
    clauses: list[list[str]], pending: list[list[int]], voices: list[bool]
) -> list[list[Tag]]:
    """Nearest-meaning tags for the unmatched content words of every clause."""
    words = sorted(
        {
            clauses[c][i]
            for c, idx in enumerate(pending)
            for i in idx
            if _is_candidate(clauses[c][i])
        }
    )
    result: list[list[Tag]] = [[] for _ in clauses]
    if not words:
        return result
    from core.embeddings import embed

    index = _Index.get()
    sims = embed(words) @ index.names.T
    best_by_word: dict[str, list[tuple[float, str, str, str]]] = {}
    for w, row in zip(words, sims, strict=True):
        scored = []
        for (kind, concept, name), s in zip(index.entries, row, strict=True):
            scored.append((round(float(s), 4), kind, concept, name))
        scored.sort(key=lambda x: (-x[0], x[1], x[2]))
        best_by_word[w] = scored
    for c, idx in enumerate(pending):
        for i in idx:
            w = clauses[c][i]
            if w not in best_by_word:
                continue
            for score, kind, concept, name in best_by_word[w]:
                if kind == "motion" and voices[c]:
                    continue
                if kind == "camera" and not voices[c] and name in vocab.CAMERA_NEEDS_CONTEXT:
                    continue
                if score >= vocab.EMBED_THRESHOLDS[kind]:
                    result[c].append(Tag(kind, concept, w, score, "embedding", i))
                else:
                    result[c].append(Tag("unknown", concept, w, score, f"nearest:{kind}", i))
                break
    return result


@dataclass
class _Reading:
    objects: list[_Obj] = field(default_factory=list)
    singles: dict[str, Tag] = field(default_factory=dict)  # setting/time/lighting/mood
    cameras: list[Tag] = field(default_factory=list)
    speed: float = 1.0
    matches: list[dict[str, Any]] = field(default_factory=list)


def _read(text: str, reading: _Reading) -> None:
    clauses = _clauses(text)
    voices = [bool(vocab.CAMERA_CONTEXT.intersection(tokens)) for tokens in clauses]
    vocab_tags: list[list[Tag]] = []
    pending: list[list[int]] = []
    for tokens, voice in zip(clauses, voices, strict=True):
        tags, unmatched = _match_vocabulary(tokens, voice)
        vocab_tags.append(tags)
        pending.append(unmatched)
    meaning = _embed_tags(clauses, pending, voices)
    for c, tokens in enumerate(clauses):
        tags = sorted(vocab_tags[c] + meaning[c], key=lambda t: t.index)
        _assemble(tokens, tags, reading)


def _record(reading: _Reading, tag: Tag, concept: str | None = None) -> None:
    reading.matches.append(
        {
            "phrase": tag.phrase,
            "concept": concept if concept is not None else tag.concept,
            "kind": tag.kind,
            "score": round(tag.score, 3),
            "how": tag.how,
        }
    )


def _assemble(tokens: list[str], tags: list[Tag], reading: _Reading) -> None:
    """Attach adjectives to nouns and verbs to subjects within one clause."""
    adjectives: dict[str, Tag] = {}
    count = 1
    clause_objects: list[int] = []
    waiting_motion: Tag | None = None
    orbiting: _Obj | None = None
    tagged = {t.index for t in tags}
    collide = bool(vocab.COLLIDE_WORDS.intersection(tokens))

    def existing(label: str, cameo: str | None, index: int) -> int | None:
        """The object a definite mention ("the red ball", "@alice" again) refers back to."""
        if cameo is not None:
            return next((k for k, o in enumerate(reading.objects) if o.cameo == cameo), None)
        j = index - 1
        while j >= 0 and any(
            t.index == j and t.kind in ("color", "size", "material") for t in tags
        ):
            j -= 1
        if j < 0 or tokens[j] not in ("the", "this", "that"):
            return None
        color = adjectives.get("color")
        for k, o in enumerate(reading.objects):
            if o.label == label and (color is None or o.color == color.concept):
                return k
        return None

    def new_object(
        label: str, phrase: str, cameo: str | None = None, proxy: str | None = None, index: int = 0
    ):
        nonlocal count, adjectives, waiting_motion
        nonlocal orbiting
        again = existing(label, cameo, index)
        if orbiting is not None:
            orbiting.orbit_target = again if again is not None else len(reading.objects)
            orbiting = None
        if again is not None:
            if waiting_motion is not None and reading.objects[again].motion is None:
                reading.objects[again].motion = waiting_motion.concept
            clause_objects.append(again)
            adjectives, count, waiting_motion = {}, 1, None
            return
        for _ in range(max(1, min(count, vocab.MAX_OBJECTS))):
            obj = _Obj(label=label, phrase=phrase, cameo=cameo, proxy_shape=proxy, collide=collide)
            if "color" in adjectives:
                obj.color = adjectives["color"].concept
            if "size" in adjectives:
                obj.size = vocab.SIZES[adjectives["size"].concept]
            if "material" in adjectives:
                obj.material = adjectives["material"].concept
            if waiting_motion is not None:
                obj.motion = waiting_motion.concept
            reading.objects.append(obj)
            clause_objects.append(len(reading.objects) - 1)
        adjectives = {}
        count = 1
        waiting_motion = None

    for tag in tags:
        kind = tag.kind
        if kind in ("color", "size", "material"):
            adjectives[kind] = tag
            concept = vocab.COLORS[tag.concept][1] if kind == "color" else None
            _record(reading, tag, concept)
        elif kind == "count":
            count = vocab.COUNTS[tag.concept]
        elif kind == "speed":
            reading.speed = vocab.SPEEDS[tag.concept]
            _record(reading, tag)
        elif kind == "object":
            new_object(tag.concept, tag.phrase, index=tag.index)
            _record(reading, tag)
        elif kind == "cameo":
            new_object("person", tag.phrase, cameo=tag.concept, index=tag.index)
            _record(reading, Tag("cameo", tag.concept, tag.phrase, 1.0, "mention", tag.index))
        elif kind == "motion":
            _record(reading, tag)
            if clause_objects:
                subject = reading.objects[clause_objects[-1]]
                if subject.motion is None or subject.motion == "static":
                    # Plural subjects ("two balls bounce") share the verb.
                    for k in clause_objects:
                        o = reading.objects[k]
                        if o.label == subject.label and o.motion is None:
                            o.motion = tag.concept
                    subject.motion = tag.concept
                if tag.concept == "orbits":
                    orbiting = subject  # circles whatever is named next
            else:
                waiting_motion = tag
        elif kind == "camera":
            reading.cameras.append(tag)
            _record(reading, tag)
        elif kind in ("setting", "time", "lighting", "mood"):
            held = reading.singles.get(kind)
            if held is None or tag.score > held.score:
                reading.singles[kind] = tag
            _record(reading, tag)
        elif kind == "unknown":
            reading.matches.append(
                {
                    "phrase": tag.phrase,
                    "concept": None,
                    "kind": None,
                    "score": round(tag.score, 3),
                    "how": tag.how,
                }
            )
            if _looks_like_noun(tokens, tag.index, tagged, tags) and _proxy_count(reading) < 2:
                new_object(tag.phrase, tag.phrase, proxy="box")
                reading.matches[-1].update({"concept": "proxy", "kind": "object"})

    if adjectives and clause_objects:
        # Trailing description ("a ball, bright red") belongs to the last thing named.
        last = reading.objects[clause_objects[-1]]
        if "color" in adjectives and last.color is None:
            last.color = adjectives["color"].concept
        if "material" in adjectives and last.material is None:
            last.material = adjectives["material"].concept


def _proxy_count(reading: _Reading) -> int:
    return sum(1 for o in reading.objects if o.proxy_shape)


def _looks_like_noun(tokens: list[str], i: int, tagged: set[int], tags: list[Tag]) -> bool:
    """An unknown word right after an article, number or adjective, ending a noun phrase."""
    word = tokens[i]
    if word.endswith(_ADJECTIVE_ENDINGS) or i == 0:
        return False
    before = tokens[i - 1]
    after_determiner = before in vocab.COUNTS or before in ("the", "this", "that", "its")
    after_adjective = any(
        t.index == i - 1 and t.kind in ("color", "size", "material") for t in tags
    )
    if not (after_determiner or after_adjective):
        return False
    if i + 1 < len(tokens):
        nxt = tokens[i + 1]
        if i + 1 in tagged and any(t.index == i + 1 and t.kind == "object" for t in tags):
            return False
        if nxt not in vocab.STOPWORDS and i + 1 not in tagged and not nxt.endswith("s"):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Building the plan


def plan_scene(prompt: str, *, seconds: float, storyboard: list[dict] | None = None) -> ScenePlan:
    """Understand ``prompt`` (or a storyboard of shots) as a ScenePlan lasting ``seconds``."""
    entries = _entries(prompt, seconds, storyboard)
    reading = _Reading()
    shots: list[Shot] = []
    dialogue_lines: list[tuple[int, str, str]] = []  # (shot index, text, clause before it)
    for s, (text, shot_seconds, camera) in enumerate(entries):
        bare = _QUOTE_RE.sub(" , ", text)
        for match in _QUOTE_RE.finditer(text):
            line = (match.group(1) or match.group(2) or "").strip()
            if line:
                dialogue_lines.append((s, line, text[: match.start()]))
        before = len(reading.cameras)
        _read(bare, reading)
        moves = [t.concept for t in reading.cameras[before:]]
        if camera is not None:
            move = _camera_name(camera)
            if move is not None:
                reading.matches.append(
                    {
                        "phrase": str(camera),
                        "concept": move,
                        "kind": "camera",
                        "score": 1.0,
                        "how": "storyboard",
                    }
                )
                moves = [move]
        shots.extend(_shots_for(shot_seconds, moves, text))

    objects, extras = _objects(reading)
    setting = _single(reading, "setting", prompt_texts=[e[0] for e in entries])
    time_of_day = _single(reading, "time", prompt_texts=[e[0] for e in entries], setting=setting)
    lighting = _single(reading, "lighting", setting=setting, time_of_day=time_of_day)
    mood = _single(reading, "mood", prompt_texts=[e[0] for e in entries])
    moving = any(o.motion != "static" for o in objects)
    for shot in shots:
        if shot.camera == "":
            shot.camera = "static" if moving else ("orbit" if objects else "pan")
            reading.matches.append(
                {
                    "phrase": "",
                    "concept": shot.camera,
                    "kind": "camera",
                    "score": 0.0,
                    "how": "default",
                }
            )
    duration = sum(s.duration_s for s in shots)
    _stage(objects, extras, reading.speed, duration, setting)
    dialogue = _dialogue(dialogue_lines, shots, objects)
    return ScenePlan(
        prompt=prompt,
        setting=setting,
        time_of_day=time_of_day,
        lighting=lighting,
        mood=mood,
        objects=objects,
        shots=shots,
        dialogue=dialogue,
        matches=reading.matches,
    )


def _entries(prompt: str, seconds: float, storyboard: list[dict] | None):
    if not storyboard:
        return [(prompt or "", float(seconds), None)]
    given = [e.get("seconds") for e in storyboard]
    known = sum(float(s) for s in given if s)
    unknown = sum(1 for s in given if not s)
    share = max(float(seconds) - known, 0.0) / unknown if unknown else 0.0
    out = []
    for entry in storyboard:
        text = str(entry.get("prompt") or entry.get("description") or "")
        out.append((text, float(entry.get("seconds") or share or 1.0), entry.get("camera")))
    return out


def _camera_name(value: Any) -> str | None:
    key = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    if key in CAMERA_MOVES:
        return key
    senses = LOOKUP.get(str(value).strip().lower().replace("-", " "), [])
    for kind, concept in senses:
        if kind == "camera":
            return concept
    return None


def _shots_for(seconds: float, moves: list[str], text: str) -> list[Shot]:
    """One shot, or one per camera move the text names in order ("static, then push in")."""
    distinct: list[str] = []
    for m in moves:
        if not distinct or distinct[-1] != m:
            distinct.append(m)
    if not distinct:
        return [Shot(duration_s=seconds, camera="", description=text.strip())]
    part = seconds / len(distinct)
    return [Shot(duration_s=part, camera=m, description=text.strip()) for m in distinct]


def _single(
    reading: _Reading, kind: str, *, prompt_texts=(), setting=None, time_of_day=None
) -> str:
    tag = reading.singles.get(kind)
    if tag is not None:
        return tag.concept
    if kind in ("setting", "time", "mood") and any(t.strip() for t in prompt_texts):
        found = _whole_prompt(kind, " ".join(_QUOTE_RE.sub(" ", t) for t in prompt_texts))
        if found is not None:
            concept, score = found
            reading.matches.append(
                {
                    "phrase": "(whole prompt)",
                    "concept": concept,
                    "kind": kind,
                    "score": round(score, 3),
                    "how": "embedding",
                }
            )
            return concept
    concept = _default(kind, setting, time_of_day)
    reading.matches.append(
        {"phrase": "", "concept": concept, "kind": kind, "score": 0.0, "how": "default"}
    )
    return concept


def _whole_prompt(kind: str, text: str) -> tuple[str, float] | None:
    from core.embeddings import embed

    keys, table = _Index.get().scenes[kind]
    sims = table @ embed([text])[0]
    order = np.argsort(-sims, kind="stable")
    best, second = float(sims[order[0]]), float(sims[order[1]])
    # Needs both absolute closeness and a clear lead, or the default is the honest answer.
    if best >= vocab.SCENE_THRESHOLDS[kind] and best - second >= vocab.SCENE_MARGIN:
        return keys[int(order[0])], best
    return None


def _default(kind: str, setting: str | None, time_of_day: str | None) -> str:
    if kind == "setting":
        return "studio"
    if kind == "time":
        return "night" if setting == "space" else "day"
    if kind == "lighting":
        if setting == "city" and time_of_day == "night":
            return "neon"
        if time_of_day == "night":
            return "moody"
        if time_of_day in ("sunset", "sunrise") or setting in ("studio", "snow"):
            return "soft"
        return "hard"
    return "calm"


def _objects(reading: _Reading) -> tuple[list[SceneObject], list[dict[str, Any]]]:
    found = reading.objects[: vocab.MAX_OBJECTS]
    if not found and not reading.singles.get("setting"):
        # Nothing named at all: a ball dropped into a studio, so the clip still shows motion.
        found = [_Obj(label="ball", phrase="", motion="falls")]
        reading.matches.append(
            {"phrase": "", "concept": "ball", "kind": "object", "score": 0.0, "how": "default"}
        )
    counters: dict[str, int] = {}
    out: list[SceneObject] = []
    for k, o in enumerate(found):
        kind = vocab.OBJECTS.get(o.label) or vocab.OBJECTS["cube"]
        shape = o.proxy_shape or kind.shape
        if o.cameo:
            kind = vocab.OBJECTS["person"]
            shape = kind.shape
        color_name = o.color or kind.color or DEFAULT_PALETTE[k % len(DEFAULT_PALETTE)]
        material = o.material or kind.material
        props = vocab.MATERIALS[material]
        size = round(kind.size * o.size, 4)
        base = (o.cameo or o.label).replace(" ", "-")
        counters[base] = counters.get(base, 0) + 1
        restitution = props.restitution
        if o.motion == "bounces":
            # Asked to bounce, it bounces, whatever it is made of.
            restitution = max(restitution, 0.88)
        out.append(
            SceneObject(
                id=f"{base}-{counters[base]}",
                label="person" if o.cameo else o.label,
                shape=shape,
                color=vocab.srgb(*vocab.COLORS[color_name][0]),
                size=size,
                material=material,
                motion=o.motion or "static",
                position=(0.0, 0.0, 0.0),
                mass=round(_mass(shape, size, props.density, kind), 4),
                restitution=restitution,
                friction=props.friction,
                cameo=o.cameo,
            )
        )
    # Staging needs what the words said beyond the plan's fields: whom to orbit, whom to hit.
    extras = []
    for k, o in enumerate(found):
        target = (
            o.orbit_target if o.orbit_target is not None and o.orbit_target < len(out) else None
        )
        extras.append(
            {"orbit": out[target].id if target not in (None, k) else None, "collide": o.collide}
        )
    return out, extras


def _mass(shape: str, size: float, density: float, kind: vocab.ObjectKind) -> float:
    if kind.figure:
        return 70.0
    if shape == "sphere":
        volume = 4.0 / 3.0 * math.pi * size**3
    elif shape == "box":
        volume = 8.0 * size**3
    else:
        volume = 2.0 * math.pi * size**3
    return max(density * volume * (0.03 if kind.hollow else 1.0), 0.01)


def _stage(
    objects: list[SceneObject],
    extras: list[dict[str, Any]],
    speed: float,
    duration: float,
    setting: str,
) -> None:
    """Choose start positions and velocities so the asked-for action happens on screen.

    Resting things stand in a row across the middle; movers start at the left of the row and
    travel right, sized so they cross the stage within the clip; orbiters circle their target.
    """
    if not objects:
        return
    ground = ground_for(setting)
    g = ground.gravity
    duration = max(duration, 0.5)
    extra = {o.id: e for o, e in zip(objects, extras, strict=True)}
    anchors = [o for o in objects if o.motion in ("static", "falls")]
    spacing = max([2.6 * o.size for o in objects] + [0.9])
    if any(o.motion == "orbits" for o in objects):
        # Orbit circles must not take in a neighbour: the physics centres them on the nearest.
        spacing = max(spacing, 2.0 * max(2.0 * o.size + 1.3 for o in objects))
    for i, o in enumerate(anchors):
        x = (i - (len(anchors) - 1) / 2.0) * spacing
        y = rest_height(o) + (2.0 + 2.0 * o.size if o.motion == "falls" else 0.0)
        _set(o, (x, y, 0.0), (0.0, 0.0, 0.0))

    movers = [o for o in objects if o.motion in ("bounces", "rolls", "slides", "thrown")]
    half = max(1.3, len(anchors) * spacing / 2.0 + 0.6)
    head_on = not anchors and len(movers) >= 2 and all(extra[o.id]["collide"] for o in movers)
    for lane, o in enumerate(movers):
        if extra[o.id]["collide"] and anchors:
            z = anchors[lane % len(anchors)].position[2]  # straight at the thing it should hit
        elif len(movers) == 1 or head_on:
            z = 0.0
        else:
            z = (lane - (len(movers) - 1) / 2.0) * 0.9
        x0 = -half - 0.3 * lane
        travel = 2.0 * half
        r = rest_height(o)
        if o.motion == "bounces":
            vx = travel / duration * 0.8 * speed
            start, velocity = (x0, r + 1.1 + 2.5 * o.size, z), (vx, 0.0, 0.0)
        elif o.motion == "thrown":
            vy = 4.2 * math.sqrt(speed)
            vx = min(travel * 0.55 / (2.0 * vy / g), 6.0) * speed
            start, velocity = (x0, r + 0.6, z), (vx, vy, 0.0)
        elif o.motion == "rolls":
            vx = _launch_speed(travel, duration, ground.rolling * g) * speed
            start, velocity = (x0, r, z), (vx, 0.0, 0.0)
        else:  # slides: friction brings it to a stop near the far side
            mu = math.sqrt(o.friction * ground.friction)
            vx = _launch_speed(travel * 0.8, duration, mu * g) * speed
            start, velocity = (x0, r, z), (vx, 0.0, 0.0)
        if head_on and lane % 2 == 1:
            # Movers told to collide come at each other from opposite sides.
            start = (-start[0], start[1], start[2])
            velocity = (-velocity[0], velocity[1], velocity[2])
        _set(o, start, velocity)

    orbiters = [o for o in objects if o.motion == "orbits"]
    by_id = {o.id: o for o in objects}
    for k, o in enumerate(orbiters):
        target = by_id.get(extra[o.id]["orbit"] or "")
        if target is None or target.motion == "orbits":
            target = anchors[0] if anchors else None
        cx, cz = (target.position[0], target.position[2]) if target else (0.0, 0.0)
        cy = max(target.position[1] if target else 1.0, rest_height(o) + 0.3)
        radius = (target.size if target else 0.0) + o.size + 0.9 + 0.4 * k
        rate = 2.0 * math.pi / max(duration, 3.0) * speed
        phase = 2.0 * math.pi * k / len(orbiters)
        rx, rz = radius * math.cos(phase), -radius * math.sin(phase)
        # Counter-clockwise seen from above, as the physics reads it from r x v.
        _set(o, (cx + rx, cy, cz + rz), (rate * rz, 0.0, -rate * rx))


def _launch_speed(distance: float, duration: float, decel: float) -> float:
    """Speed that carries a body ``distance`` under constant ``decel`` within ``duration``."""
    if decel <= 1e-6:
        return distance / duration
    stopping = math.sqrt(2.0 * decel * distance)
    if stopping / decel <= duration:
        return stopping
    return distance / duration + 0.5 * decel * duration


def _set(o: SceneObject, position, velocity) -> None:
    o.position = tuple(round(float(v), 4) for v in position)
    o.velocity = tuple(round(float(v), 4) for v in velocity)


def _dialogue(lines: list[tuple[int, str, str]], shots: list[Shot], objects: list[SceneObject]):
    """Place each quoted line inside its shot, one after another, with time to be heard."""
    starts = np.cumsum([0.0] + [s.duration_s for s in shots])
    figures = [o for o in objects if is_figure(o)]
    out: list[Dialogue] = []
    by_shot: dict[int, list[tuple[str, str]]] = {}
    for s, text, before in lines:
        by_shot.setdefault(s, []).append((text, before))
    for s, items in sorted(by_shot.items()):
        begin, end = float(starts[s]), float(starts[s + 1])
        length = end - begin
        t = begin + min(0.6, 0.15 * length)
        for text, before in items:
            spoken = 0.4 + 0.36 * len(text.split())  # about 165 words a minute, plus breath
            start = min(t, max(begin, end - spoken - 0.1))
            out.append(
                Dialogue(text=text, start_s=round(start, 3), speaker=_speaker(before, figures))
            )
            t = start + spoken + 0.25
    return out


def _speaker(before: str, figures: list[SceneObject]) -> str | None:
    """The figure named nearest before the quote, else the only figure, else a narrator."""
    if not figures:
        return None
    text = before.lower()
    best, where = None, -1
    for f in figures:
        names = [f"@{f.cameo}"] if f.cameo else list(vocab.OBJECTS["person"].names)
        for name in names:
            pos = text.rfind(name.lower())
            if pos > where:
                best, where = f, pos
    if best is not None:
        return best.id
    return figures[0].id if len(figures) == 1 else None
