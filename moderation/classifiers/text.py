"""The input classifier: normalised rules and word lists, then nearest-meaning matching against
each category's exemplars with the packaged MiniLM embeddings.

A category is flagged when a rule matches (score 1.0) or when some clause of the text is closer
in meaning to one of the category's exemplars than the category's threshold and closer to it
than to any everyday (benign) exemplar. Thresholds drop (get stricter) for teen accounts and
when a real person's cameo is in the prompt. Every flag says what matched, so a decision can be
explained to the user and reviewed by staff.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field

import numpy as np
from django.conf import settings

from moderation.classifiers import lexicon
from moderation.classifiers.normalize import normalize

VERSION = "text-1"
# Categories a real person's presence or a teen account makes stricter.
PERSON_SENSITIVE = ("sexual", "violence", "hate", "harassment", "self_harm")
TEEN_SENSITIVE = ("sexual", "violence", "self_harm")
CLAUSES = re.compile(r"[.;!?\n]+|,\s+(?:then|and then|while|as)\s+|\s+(?:and then|then)\s+")
MENTION = re.compile(r"@[a-z0-9_.]+")
MAX_CLAUSES = 32
WILD_ENDING = r"[\w\-]*"
PLURAL_ENDING = r"(?:s|es)?"


@dataclass
class Hit:
    category: str
    score: float
    threshold: float
    source: str  # rule | meaning | public_figure | registry | restriction
    matched: str
    detail: dict = field(default_factory=dict)


@dataclass
class TextResult:
    hits: list[Hit]
    scores: dict[str, float]
    normalized: str
    version: str = VERSION

    @property
    def flagged(self) -> bool:
        return bool(self.hits)

    @property
    def primary(self) -> Hit:
        """The most severe hit: what a refusal is named after."""
        from moderation.policy import SEVERITY

        return max(self.hits, key=lambda hit: SEVERITY.get(hit.category, 1))

    @property
    def categories(self) -> list[str]:
        return sorted({hit.category for hit in self.hits})

    def explain(self) -> list[dict]:
        return [asdict(hit) for hit in self.hits]


@dataclass(frozen=True)
class ProtectedEntry:
    term: str  # normalised
    holder: str
    kind: str


def _term_pattern(term: str) -> str:
    if term == "@":
        return MENTION.pattern
    wildcard = term.endswith("*")
    body = re.escape(normalize(term.rstrip("*"))).replace(r"\ ", r"[\s\-]*")
    ending = WILD_ENDING if wildcard else PLURAL_ENDING
    return rf"(?<![\w@]){body}{ending}(?!\w)"


def _compile(terms: list[str]) -> re.Pattern:
    return re.compile("|".join(f"(?:{_term_pattern(t)})" for t in terms))


class _Rule:
    """One rule: a term list, or two lists that must both match (``("+", A, B)``)."""

    def __init__(self, spec):
        if isinstance(spec, tuple):
            self.parts = [_compile(spec[1]), _compile(spec[2])]
        else:
            self.parts = [_compile([spec])]

    def match(self, text: str) -> str | None:
        found = []
        for part in self.parts:
            hit = part.search(text)
            if hit is None:
                return None
            found.append(hit.group(0))
        return " + ".join(found)


def _rules_for(specs: list) -> list[_Rule]:
    plain = [s for s in specs if not isinstance(s, tuple)]
    rules = [_Rule(s) for s in specs if isinstance(s, tuple)]
    if plain:
        rule = _Rule("x")
        rule.parts = [_compile(plain)]
        rules.append(rule)
    return rules


_lock = threading.Lock()
_state: dict = {}


def _load() -> dict:
    """Compiled rules and exemplar embeddings, built once per process."""
    if _state:
        return _state
    with _lock:
        if not _state:
            from core.embeddings import embed

            categories = list(lexicon.EXEMPLARS)
            texts = [normalize(t) for c in categories for t in lexicon.EXEMPLARS[c]]
            vectors = embed(texts + [normalize(t) for t in lexicon.BENIGN])
            offset = 0
            exemplars = {}
            for category in categories:
                n = len(lexicon.EXEMPLARS[category])
                exemplars[category] = (vectors[offset : offset + n], lexicon.EXEMPLARS[category])
                offset += n
            figures = [*lexicon.PUBLIC_FIGURES, *settings.MODERATION_PUBLIC_FIGURES]
            _state.update(
                rules={c: _rules_for(specs) for c, specs in lexicon.RULES.items()},
                exemplars=exemplars,
                benign=vectors[offset:],
                figures=_compile(figures),
            )
    return _state


def _load_comment() -> dict:
    """The prompt state plus the comment exemplars (lexicon.COMMENT_EXEMPLARS), embedded on
    the first comment screened, so that prompt-only processes never pay for them."""
    state = _load()
    if "comment_exemplars" in state:
        return state
    with _lock:
        if "comment_exemplars" not in state:
            from core.embeddings import embed

            categories = list(lexicon.COMMENT_EXEMPLARS)
            texts = [normalize(t) for c in categories for t in lexicon.COMMENT_EXEMPLARS[c]]
            vectors = embed(texts + [normalize(t) for t in lexicon.COMMENT_BENIGN])
            merged = dict(state["exemplars"])
            offset = 0
            for category in categories:
                n = len(lexicon.COMMENT_EXEMPLARS[category])
                vecs, sentences = merged[category]
                merged[category] = (
                    np.vstack([vecs, vectors[offset : offset + n]]),
                    [*sentences, *lexicon.COMMENT_EXEMPLARS[category]],
                )
                offset += n
            state["comment_benign"] = np.vstack([state["benign"], vectors[offset:]])
            state["comment_exemplars"] = merged
    return state


def warm_up() -> None:
    _load()


def clauses(text: str) -> list[str]:
    parts = [p.strip() for p in CLAUSES.split(text) if p and len(p.strip()) > 2]
    whole = text.strip()
    out = [whole] if whole else []
    out.extend(p for p in parts if p != whole)
    return out[:MAX_CLAUSES]


def thresholds(*, teen: bool, real_person: bool) -> dict[str, float]:
    base = dict(settings.MODERATION_THRESHOLDS)
    for category in base:
        if teen and category in TEEN_SENSITIVE:
            base[category] -= settings.MODERATION_TEEN_MARGIN
        if real_person and category in PERSON_SENSITIVE:
            base[category] -= settings.MODERATION_CAMEO_MARGIN
    return base


def classify(
    texts: list[str],
    *,
    teen: bool = False,
    cameos: list[dict] | None = None,
    protected: list[ProtectedEntry] | None = None,
    kind: str = "prompt",
    limits: dict[str, float] | None = None,
    min_margin: float = 0.0,
) -> TextResult:
    """Screens ``texts`` (a prompt and its storyboard shots, or spoken lines) as one item.

    ``kind="comment"`` screens text written to people rather than a scene to generate: the
    comment exemplars join the prompt ones, and the real-person list (about generating a
    likeness) does not apply. ``limits`` replaces the prompt thresholds, and a meaning match
    must then beat the nearest everyday exemplar by ``min_margin``.
    """
    from core.embeddings import embed

    comment = kind == "comment"
    state = _load_comment() if comment else _load()
    exemplar_sets = state["comment_exemplars"] if comment else state["exemplars"]
    benign_vecs = state["comment_benign"] if comment else state["benign"]
    cameos = cameos or []
    normalized = "\n".join(normalize(t) for t in texts if t)
    real_person = any(c.get("kind", "person") == "person" for c in cameos)
    if limits is None:
        limits = thresholds(teen=teen, real_person=real_person)
    hits: list[Hit] = []
    scores: dict[str, float] = {}

    for category, rules in state["rules"].items():
        for rule in rules:
            matched = rule.match(normalized)
            if matched:
                hits.append(Hit(category, 1.0, limits.get(category, 1.0), "rule", matched))
                break

    figure = None if comment else state["figures"].search(normalized)
    if figure:
        hits.append(Hit("real_person", 1.0, 1.0, "public_figure", figure.group(0)))

    for entry in protected or []:
        if re.search(_term_pattern(entry.term), normalized):
            hits.append(Hit("rights", 1.0, 1.0, "registry", entry.term, {"holder": entry.holder}))

    chunks = [c for t in texts for c in clauses(normalize(t or ""))]
    if chunks:
        restriction_topics = [
            (cameo, topic) for cameo in cameos for topic in cameo.get("restrictions") or []
        ]
        topic_texts = [normalize(f"{topic}") for _, topic in restriction_topics]
        vectors = embed(chunks + topic_texts)
        chunk_vecs, topic_vecs = vectors[: len(chunks)], vectors[len(chunks) :]
        benign_per_chunk = (chunk_vecs @ benign_vecs.T).max(axis=1)
        benign = float(benign_per_chunk.max())
        flagged = {hit.category for hit in hits}
        per_category = {
            category: chunk_vecs @ vecs.T for category, (vecs, _) in exemplar_sets.items()
        }
        nearest = np.stack([sims.max(axis=1) for sims in per_category.values()]).max(axis=0)
        for category, (_, sentences) in exemplar_sets.items():
            sims = per_category[category]
            best_chunk, best_ex = np.unravel_index(int(sims.argmax()), sims.shape)
            score = float(sims[best_chunk, best_ex])
            scores[category] = round(score, 4)
            limit = limits[category]
            margin = score - float(benign_per_chunk[best_chunk])
            # Minors' exemplars share words with adult sexual content and with teen life: by
            # meaning alone, a text is about minors only when that is its nearest category.
            exclusive = category != "minors" or score >= float(nearest[best_chunk])
            if category not in flagged and score >= limit and margin >= min_margin and exclusive:
                hits.append(
                    Hit(
                        category,
                        round(score, 4),
                        round(limit, 4),
                        "meaning",
                        chunks[best_chunk][:200],
                        {"nearest": sentences[best_ex], "benign_margin": round(margin, 4)},
                    )
                )
        scores["benign"] = round(benign, 4)
        hits.extend(
            _restriction_hits(normalized, chunks, chunk_vecs, restriction_topics, topic_vecs)
        )
    return TextResult(hits=hits, scores=scores, normalized=normalized[:2000])


def _restriction_hits(normalized, chunks, chunk_vecs, restriction_topics, topic_vecs) -> list[Hit]:
    """A cameo's owner lists topics their likeness must stay out of: a prompt naming the topic
    or close to it in meaning is refused."""
    out = []
    limit = settings.MODERATION_RESTRICTION_THRESHOLD
    for (cameo, topic), vec in zip(restriction_topics, topic_vecs, strict=True):
        detail = {"cameo": cameo.get("handle"), "cameo_id": cameo.get("cameo_id"), "topic": topic}
        if _compile([f"{topic}*"]).search(normalized):
            out.append(Hit("cameo_restriction", 1.0, limit, "rule", topic, detail))
            continue
        sims = chunk_vecs @ vec
        best = int(sims.argmax())
        if float(sims[best]) >= limit:
            out.append(
                Hit(
                    "cameo_restriction",
                    round(float(sims[best]), 4),
                    limit,
                    "restriction",
                    chunks[best][:200],
                    detail,
                )
            )
    return out
