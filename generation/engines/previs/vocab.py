"""What the previs planner knows: concepts by kind, the words that name them, and their defaults.

Each concept lists its names. A name found verbatim in a prompt is a vocabulary match; any other
content word is compared by meaning (MiniLM) with every name of every embeddable kind, so a word
the lists never mention ("woodland", "plummets", "cosmos") still lands on the nearest concept.
Colours are the exception: a small sentence encoder places colour words badly ("crimson" sits
nearer "purple" than "red"), and colour names have exact values anyway, so they are a table.
"""

from __future__ import annotations

from dataclasses import dataclass


def srgb(r: int, g: int, b: int) -> tuple[float, float, float]:
    """8-bit sRGB to linear RGB, which is what SceneObject.color holds."""

    def lin(c: int) -> float:
        v = c / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return (round(lin(r), 4), round(lin(g), 4), round(lin(b), 4))


# Colour words to 8-bit sRGB (CSS / X11 values where the name exists there) and the basic colour
# they are a shade of, which is what the plan reports as understood.
COLORS: dict[str, tuple[tuple[int, int, int], str]] = {
    "red": ((215, 25, 32), "red"),
    "crimson": ((220, 20, 60), "red"),
    "scarlet": ((255, 36, 0), "red"),
    "ruby": ((224, 17, 95), "red"),
    "cherry": ((222, 49, 99), "red"),
    "maroon": ((128, 0, 0), "red"),
    "burgundy": ((128, 0, 32), "red"),
    "orange": ((255, 130, 0), "orange"),
    "amber": ((255, 191, 0), "orange"),
    "tangerine": ((242, 133, 0), "orange"),
    "yellow": ((250, 215, 30), "yellow"),
    "gold": ((255, 195, 40), "yellow"),
    "golden": ((255, 195, 40), "yellow"),
    "lemon": ((255, 244, 79), "yellow"),
    "green": ((40, 160, 60), "green"),
    "lime": ((140, 220, 40), "green"),
    "emerald": ((80, 200, 120), "green"),
    "olive": ((128, 128, 0), "green"),
    "jade": ((0, 168, 107), "green"),
    "teal": ((0, 128, 128), "cyan"),
    "turquoise": ((64, 224, 208), "cyan"),
    "cyan": ((0, 200, 220), "cyan"),
    "aqua": ((0, 200, 220), "cyan"),
    "blue": ((30, 80, 220), "blue"),
    "azure": ((0, 127, 255), "blue"),
    "navy": ((20, 30, 110), "blue"),
    "cobalt": ((0, 71, 171), "blue"),
    "sapphire": ((15, 82, 186), "blue"),
    "indigo": ((75, 0, 130), "purple"),
    "purple": ((128, 40, 170), "purple"),
    "violet": ((143, 0, 255), "purple"),
    "lavender": ((181, 126, 220), "purple"),
    "magenta": ((230, 0, 160), "pink"),
    "pink": ((255, 120, 170), "pink"),
    "rose": ((255, 0, 127), "pink"),
    "brown": ((120, 72, 35), "brown"),
    "chocolate": ((123, 63, 0), "brown"),
    "tan": ((210, 180, 140), "brown"),
    "beige": ((225, 210, 170), "brown"),
    "white": ((235, 235, 235), "white"),
    "ivory": ((255, 250, 230), "white"),
    "silver": ((192, 192, 200), "grey"),
    "grey": ((128, 128, 128), "grey"),
    "gray": ((128, 128, 128), "grey"),
    "black": ((20, 20, 22), "black"),
    "charcoal": ((54, 69, 79), "grey"),
}

SIZES: dict[str, float] = {
    "tiny": 0.45,
    "little": 0.7,
    "small": 0.7,
    "mini": 0.6,
    "medium": 1.0,
    "big": 1.6,
    "large": 1.6,
    "huge": 2.4,
    "giant": 2.8,
    "enormous": 2.8,
    "massive": 2.6,
}

SPEEDS: dict[str, float] = {
    "slow": 0.65,
    "slowly": 0.65,
    "gently": 0.75,
    "lazily": 0.6,
    "fast": 1.4,
    "quickly": 1.4,
    "rapidly": 1.5,
    "swiftly": 1.4,
    "wildly": 1.5,
}

COUNTS: dict[str, int] = {
    "one": 1,
    "a": 1,
    "an": 1,
    "single": 1,
    "two": 2,
    "pair": 2,
    "couple": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "several": 3,
    "some": 3,
    "many": 5,
}
MAX_OBJECTS = 8


@dataclass(frozen=True)
class Material:
    restitution: float
    friction: float
    density: float  # kg/m³, for masses


MATERIALS: dict[str, Material] = {
    "matte": Material(0.5, 0.5, 500.0),
    "plastic": Material(0.6, 0.4, 900.0),
    "rubber": Material(0.8, 0.9, 700.0),
    "metal": Material(0.35, 0.3, 7800.0),
    "wood": Material(0.4, 0.55, 600.0),
    "glass": Material(0.5, 0.2, 2500.0),
    "stone": Material(0.2, 0.7, 2600.0),
}
MATERIAL_WORDS: dict[str, str] = {
    "matte": "matte",
    "plastic": "plastic",
    "glossy": "plastic",
    "shiny": "plastic",
    "rubber": "rubber",
    "rubbery": "rubber",
    "bouncy": "rubber",
    "metal": "metal",
    "metallic": "metal",
    "steel": "metal",
    "iron": "metal",
    "chrome": "metal",
    "copper": "metal",
    "brass": "metal",
    "aluminium": "metal",
    "aluminum": "metal",
    "wood": "wood",
    "wooden": "wood",
    "glass": "glass",
    "crystal": "glass",
    "transparent": "glass",
    "stone": "stone",
    "concrete": "stone",
    "granite": "stone",
}


@dataclass(frozen=True)
class ObjectKind:
    shape: str  # "sphere" | "box" | "cylinder"
    size: float  # radius or half-extent, metres
    material: str
    color: str | None  # a COLORS key, when the thing has a usual colour
    names: tuple[str, ...]
    figure: bool = False  # drawn as a standing character (people, cameos)
    hollow: bool = False  # an inflated ball weighs a few percent of a solid one


OBJECTS: dict[str, ObjectKind] = {
    "ball": ObjectKind(
        "sphere", 0.25, "rubber", None, ("ball", "balls", "sphere", "spheres"), hollow=True
    ),
    "orb": ObjectKind(
        "sphere", 0.25, "glass", None, ("orb", "orbs", "bubble", "bubbles"), hollow=True
    ),
    "marble": ObjectKind("sphere", 0.1, "glass", "azure", ("marble", "marbles")),
    "basketball": ObjectKind("sphere", 0.12, "rubber", "orange", ("basketball",), hollow=True),
    "football": ObjectKind(
        "sphere", 0.11, "rubber", "white", ("football", "soccer ball"), hollow=True
    ),
    "tennis ball": ObjectKind("sphere", 0.05, "rubber", "lime", ("tennis ball",), hollow=True),
    "beach ball": ObjectKind("sphere", 0.3, "plastic", None, ("beach ball",), hollow=True),
    "bowling ball": ObjectKind("sphere", 0.11, "stone", "black", ("bowling ball",)),
    "planet": ObjectKind("sphere", 0.8, "stone", "azure", ("planet", "planets")),
    "moon": ObjectKind("sphere", 0.3, "stone", "grey", ("moon", "moons", "asteroid")),
    "boulder": ObjectKind("sphere", 0.45, "stone", "grey", ("boulder", "boulders", "rock")),
    "apple": ObjectKind("sphere", 0.05, "matte", "red", ("apple", "apples")),
    "cube": ObjectKind("box", 0.25, "plastic", None, ("cube", "cubes", "block", "blocks")),
    "box": ObjectKind("box", 0.3, "matte", "tan", ("box", "boxes", "package", "parcel")),
    "crate": ObjectKind("box", 0.35, "wood", "brown", ("crate", "crates", "chest")),
    "brick": ObjectKind("box", 0.1, "stone", "brown", ("brick", "bricks")),
    "die": ObjectKind("box", 0.08, "plastic", "white", ("dice",)),
    "cylinder": ObjectKind("cylinder", 0.2, "plastic", None, ("cylinder", "cylinders")),
    "barrel": ObjectKind("cylinder", 0.3, "wood", "brown", ("barrel", "barrels", "drum")),
    "can": ObjectKind("cylinder", 0.05, "metal", "silver", ("cans", "soda can", "tin can")),
    "log": ObjectKind("cylinder", 0.2, "wood", "brown", ("log", "logs")),
    "wheel": ObjectKind("cylinder", 0.35, "rubber", "black", ("wheel", "wheels", "tire", "tyre")),
    "pillar": ObjectKind("cylinder", 0.3, "stone", "beige", ("pillar", "column", "pillars")),
    "person": ObjectKind(
        "cylinder",
        0.22,
        "matte",
        "blue",
        (
            "person",
            "people",
            "man",
            "men",
            "woman",
            "women",
            "child",
            "kid",
            "boy",
            "girl",
            "dancer",
            "figure",
            "character",
            "someone",
        ),
        figure=True,
    ),
}

# A standing figure's proportions, shared by the physics (its collision body) and the renderer.
FIGURE_HEIGHT = 1.75
FIGURE_HEAD = 0.13

MOTIONS: dict[str, tuple[str, ...]] = {
    "bounces": ("bounce", "bounces", "bouncing", "bounced", "bouncy", "hops", "hopping"),
    "falls": ("fall", "falls", "falling", "fell", "drops", "dropping", "dropped", "tumbles"),
    "rolls": ("roll", "rolls", "rolling", "rolled", "collide", "collides", "colliding", "crash"),
    "slides": ("slide", "slides", "sliding", "slid", "skids", "skidding", "glides", "gliding"),
    "thrown": ("thrown", "throw", "throws", "tossed", "toss", "tosses", "launched", "flung"),
    "orbits": ("orbit", "orbits", "orbiting", "circles", "circling"),
    "static": ("sits", "rests", "stands", "standing", "still", "resting", "lies"),
}
# Words that make a mover head for the others so they meet.
COLLIDE_WORDS = frozenset({"collide", "collides", "colliding", "crash", "crashes", "hits", "into"})

SETTINGS: dict[str, tuple[str, ...]] = {
    "beach": ("beach", "seaside", "shore", "coast", "sea", "ocean", "sand", "seashore"),
    "street": ("street", "road", "alley", "avenue", "sidewalk", "crosswalk"),
    "forest": ("forest", "woods", "trees", "jungle"),
    "space": ("space", "outer space", "cosmos", "galaxy", "moon surface", "lunar"),
    "desert": ("desert", "dunes", "sand dunes", "sahara"),
    "snow": ("snow", "snowy", "winter", "arctic", "glacier", "ski slope", "mountain"),
    "city": ("city", "downtown", "skyline", "metropolis", "rooftop", "skyscrapers"),
    "studio": ("studio", "white void", "stage", "white room", "tabletop", "backdrop"),
    "field": ("field", "meadow", "park", "grass", "lawn", "countryside", "farm"),
}
TIMES: dict[str, tuple[str, ...]] = {
    "sunset": ("sunset", "dusk", "twilight", "golden hour", "evening", "sun goes down", "sun sets"),
    "sunrise": ("sunrise", "dawn", "daybreak", "morning", "sun rises", "rising sun"),
    "night": ("night", "midnight", "nighttime", "moonlight", "moonlit", "starry"),
    "day": ("day", "daytime", "noon", "midday", "afternoon", "sunny", "daylight"),
}
LIGHTINGS: dict[str, tuple[str, ...]] = {
    "soft": ("soft light", "softly lit", "overcast", "cloudy", "diffuse", "gentle light"),
    "hard": ("harsh", "hard light", "harsh sunlight", "high contrast"),
    "neon": ("neon", "cyberpunk", "synthwave", "neon lights"),
    "moody": ("moody", "noir", "low key", "dim", "shadowy", "gloomy"),
}
CAMERAS: dict[str, tuple[str, ...]] = {
    "static": ("static", "locked off", "tripod", "fixed camera", "still camera", "static shot"),
    "pan": ("pan", "pans", "panning", "sweeps", "swish pan"),
    "push_in": ("push in", "pushes in", "pushing in", "zoom in", "zooms in", "zoom", "close in"),
    "dolly": ("dolly", "tracking shot", "tracks", "tracking", "follows", "trucking"),
    "orbit": ("orbit", "orbits", "orbiting", "circles", "circling", "arc shot", "360"),
    "crane": ("crane", "cranes", "crane shot", "rises", "rising", "boom up", "aerial"),
}
MOODS: dict[str, tuple[str, ...]] = {
    "calm": ("calm", "peaceful", "serene", "tranquil", "relaxing", "quiet"),
    "joyful": ("joyful", "happy", "playful", "cheerful", "fun", "upbeat"),
    "tense": ("tense", "suspenseful", "scary", "thrilling", "anxious", "horror"),
    "melancholy": ("sad", "melancholy", "lonely", "nostalgic", "somber", "wistful"),
    "epic": ("epic", "heroic", "grand", "majestic", "cinematic", "triumphant"),
    "mysterious": ("mysterious", "eerie", "dreamy", "surreal", "enigmatic"),
}
# Settings named by an adjective ("a snowy street") yield to one named by a noun.
WEAK_NAMES = frozenset({"snowy", "sunny", "starry", "moonlit", "lunar", "sand", "trees", "grass"})

# Words that put a clause in the camera's voice, so "orbits" there is a camera move.
CAMERA_CONTEXT = frozenset({"camera", "cam", "lens"})
# Camera names that also describe what things do ("the sun rises", "a moon circles"): they count
# as camera moves only in a clause about the camera.
CAMERA_NEEDS_CONTEXT = frozenset(
    {"orbit", "orbits", "orbiting", "circles", "circling", "rises", "rising", "tracks", "follows"}
)

# Descriptions compared with a whole prompt when no single word names the kind.
SETTING_SCENES: dict[str, str] = {
    "beach": "waves breaking on a sandy beach by the sea",
    "street": "cars and pedestrians on a paved street between buildings",
    "forest": "tall trees and undergrowth in a green forest",
    "space": "stars and planets floating in the darkness of outer space",
    "desert": "hot sand dunes in a dry empty desert",
    "snow": "a snowy winter landscape with white mountains",
    "city": "tall skyscrapers and lights of a big city",
    "studio": "an object on a plain backdrop in a photo studio",
    "field": "a green grassy meadow in the countryside",
}
TIME_SCENES: dict[str, str] = {
    "sunset": "the sun setting low on the horizon in the evening",
    "sunrise": "the sun rising early in the morning",
    "night": "the dark night sky with the moon and stars",
    "day": "bright daylight under a blue sky at noon",
}
MOOD_SCENES: dict[str, str] = {
    "calm": "a calm, peaceful and relaxing moment",
    "joyful": "a happy, fun and playful moment",
    "tense": "a tense, scary and suspenseful moment",
    "melancholy": "a sad, lonely and melancholic moment",
    "epic": "an epic, grand and heroic moment",
    "mysterious": "a mysterious, eerie and dreamlike moment",
}

# Kinds found by comparing single words by meaning, with the score a word must reach.
# Calibrated on paraphrases (tests/generation/engines/test_planner.py) against function words
# and unrelated nouns, which score up to ~0.45 against the nearest name.
EMBED_THRESHOLDS: dict[str, float] = {
    "object": 0.55,
    "motion": 0.5,
    "setting": 0.55,
    "time": 0.55,
    "lighting": 0.6,
    "camera": 0.6,
    "mood": 0.5,
}
# A whole prompt against a kind's scene descriptions: the best must reach this and lead the
# runner-up by SCENE_MARGIN (short prompts like "two crates" score ~0.15 on everything).
SCENE_THRESHOLDS: dict[str, float] = {"setting": 0.45, "time": 0.4, "mood": 0.4}
SCENE_MARGIN = 0.06

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "on",
        "in",
        "at",
        "to",
        "into",
        "onto",
        "from",
        "by",
        "with",
        "without",
        "for",
        "over",
        "under",
        "above",
        "below",
        "across",
        "along",
        "around",
        "through",
        "toward",
        "towards",
        "near",
        "behind",
        "beside",
        "between",
        "past",
        "up",
        "down",
        "off",
        "out",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "then",
        "than",
        "as",
        "while",
        "when",
        "where",
        "who",
        "whom",
        "which",
        "what",
        "how",
        "very",
        "really",
        "just",
        "so",
        "too",
        "also",
        "again",
        "once",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "must",
        "shall",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "their",
        "our",
        "your",
        "my",
        "we",
        "you",
        "i",
        "me",
        "us",
        "video",
        "clip",
        "scene",
        "shot",
        "footage",
        "image",
        "picture",
        "frame",
        "frames",
        "cinematic",
        "film",
        "movie",
        "render",
        "style",
        "realistic",
        "photorealistic",
        "hd",
        "4k",
        "8k",
        "quality",
        "high",
        "detailed",
        "beautiful",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "some",
        "many",
        "several",
        "few",
        "each",
        "every",
        "other",
        "another",
        "more",
        "most",
        "side",
        "top",
        "bottom",
        "left",
        "right",
        "middle",
        "center",
        "centre",
        "front",
        "back",
        "ground",
        "floor",
        "air",
        "sky",
        "sun",
        "camera",
        "cam",
        "lens",
        "says",
        "say",
        "said",
        "saying",
        "goes",
        "go",
        "going",
        "gets",
        "get",
        "makes",
        "make",
        "slowly",
        "quickly",
        "gently",
        "slow",
        "fast",
        "stack",
        "pile",
        "tower",
        "row",
        "group",
        "bunch",
        "set",
        "heap",
        "line",
        "kind",
        "sort",
        "lot",
        "among",
        "amid",
        "inside",
        "within",
        "beneath",
        "beyond",
        "upon",
        "against",
        "about",
        "until",
    ]
)
