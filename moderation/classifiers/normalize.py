"""Text normalisation that undoes the usual ways of slipping words past a filter: look-alike
letters from other scripts, accents, zero-width characters, l33t spelling, letters spaced or
dotted apart, and stretched letters.

The output is lowercase ASCII-ish text in which a rule written for ``nude`` also matches
``n.u.d.e``, ``N U D E``, ``nüde``, ``nսde`` (Armenian) and ``n00d3``-style spellings.
"""

# ruff: noqa: RUF001, RUF002 - look-alike letters are this module's subject.

from __future__ import annotations

import re
import unicodedata

# Letters from Cyrillic, Greek, Armenian and other scripts that render like Latin ones.
HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j",
        "ѕ": "s", "ԁ": "d", "ӏ": "l", "ɡ": "g", "ո": "n", "ս": "u", "օ": "o", "ց": "g",
        "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ı": "i", "ł": "l", "ø": "o", "ß": "ss",
        "æ": "ae", "œ": "oe", "ð": "d", "þ": "th",
    }
)  # fmt: skip
INVISIBLE = re.compile("[\u00ad\u034f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
     "!": "i", "|": "l", "+": "t", "€": "e", "(": "c"}
)  # fmt: skip
LEET_CHARS = set("0134578@$!|+€(")
# A token of single characters joined by separators: n.u.d.e, n-u-d-e, n_u_d_e, n*u*d*e.
SEPARATED = re.compile(r"^(?:[^\W_][.\-_*~/\\]+){2,}[^\W_]$")
STRETCHED = re.compile(r"([a-z])\1{2,}")
SPACES = re.compile(r"\s+")


def _unaccent(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _deleet(token: str) -> str:
    # Only tokens that mix letters with look-alike digits or symbols are l33t: "12 year old"
    # keeps its number, "@handle" stays a mention.
    if token.startswith("@") or not any(ch.isalpha() for ch in token):
        return token
    if not any(ch in LEET_CHARS for ch in token):
        return token
    core = token.rstrip(".,;:?!")
    tail = token[len(core) :]
    return core.translate(LEET) + tail


def _join_spaced(tokens: list[str]) -> list[str]:
    """Runs of three or more one-letter tokens are one word spelled out: ``k i l l`` (the
    last letter may carry the sentence's punctuation: ``k y s,``)."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        letter = token.rstrip(".,;:?!")
        if len(letter) == 1 and letter.isalpha():
            run.append(token)
            if letter == token:
                continue
        if len(run) >= 3:
            out.append("".join(t.rstrip(".,;:?!") for t in run) + run[-1][1:])
        else:
            out.extend(run)
        if run and run[-1] == token:
            run = []
            continue
        run = []
        if token:
            out.append(token)
    return out


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    text = INVISIBLE.sub("", text)
    text = text.casefold().translate(HOMOGLYPHS)
    text = _unaccent(text)
    tokens = []
    for token in SPACES.split(text.strip()):
        if SEPARATED.match(token):
            token = re.sub(r"[.\-_*~/\\]", "", token)
        tokens.append(_deleet(token))
    text = " ".join(_join_spaced(tokens))
    return STRETCHED.sub(r"\1", text)
