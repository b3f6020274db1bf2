"""A cameo owner's standing instructions reach the engine with every clip that shows them."""

from __future__ import annotations

import pytest

from generation.engines.previs import PreviSEngine
from generation.models import GenerationJob
from generation.work import planning_text
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _job(prompt: str, *, storyboard=None, instructions: str = "wears red") -> GenerationJob:
    return GenerationJob(
        user=UserFactory.build(),
        prompt=prompt,
        params={"storyboard": storyboard},
        annotations={
            "cameos": [
                {"handle": "ava", "engine_key": "ava", "instructions": instructions},
                {"handle": "bo", "engine_key": "bo", "instructions": ""},
            ]
        },
    )


def test_instructions_follow_the_prompt_that_names_the_cameo():
    prompt, storyboard = planning_text(_job("@ava dances on a beach at sunset."))
    assert prompt == "@ava dances on a beach at sunset. @ava wears red"
    assert storyboard is None


def test_only_the_shots_that_show_the_cameo_get_them():
    shots = [{"prompt": "a quiet beach", "seconds": 2}, {"prompt": "@Ava waves", "seconds": 2}]
    prompt, storyboard = planning_text(_job("two shots", storyboard=shots))
    assert prompt == "two shots"
    assert [s["prompt"] for s in storyboard] == ["a quiet beach", "@Ava waves. @ava wears red"]
    assert [s["seconds"] for s in storyboard] == [2, 2]


def test_the_engine_applies_them_to_that_person():
    engine = PreviSEngine(device="cpu")
    plain = engine.plan("@ava dances on a beach at sunset", seconds=2).to_dict()
    prompt, _ = planning_text(_job("@ava dances on a beach at sunset"))
    dressed = engine.plan(prompt, seconds=2).to_dict()

    def colour(plan):
        return next(o["color"] for o in plan["objects"] if o.get("cameo") == "ava")

    red, green, blue = colour(dressed)
    assert red > 0.5 and green < 0.2 and blue < 0.2
    assert colour(plain) != colour(dressed)
