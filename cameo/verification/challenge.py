"""Liveness challenges: what the person must say and do in their recording."""

from __future__ import annotations

import secrets

DIGITS = 6
TURNS = 3
# Only yaw: the frontal and profile cascades tell a turned head apart, and its direction;
# nothing packaged here tells a raised or lowered head from a tilted phone reliably.
TURN_CHOICES = ("left", "right")


def challenge_new(*, digits: int = DIGITS, turns: int = TURNS) -> dict:
    """A fresh challenge from the operating system's CSPRNG: six digits (a million readings)
    and three head turns (eight orders)."""
    chosen_digits = [str(secrets.randbelow(10)) for _ in range(digits)]
    chosen_turns = [secrets.choice(TURN_CHOICES) for _ in range(turns)]
    spoken = " ".join(chosen_digits)
    moves = ", then ".join(f"to your {t}" for t in chosen_turns)
    instructions = (
        f"Hold the phone at eye level with your face filling the frame. First, looking at the "
        f"camera, read these digits aloud one by one: {spoken}. Then turn your head {moves}, "
        f"coming back to face the camera after each turn. Keep the recording under 30 seconds."
    )
    return {"digits": chosen_digits, "turns": chosen_turns, "instructions": instructions}
