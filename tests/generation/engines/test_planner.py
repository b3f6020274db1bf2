"""The previs planner: prompts and storyboards become scene plans, paraphrases included."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core import embeddings
from generation.engines.base import ScenePlan
from generation.engines.previs.planner import plan_scene, warm_up
from generation.engines.previs.vocab import COLORS, srgb


@pytest.fixture(scope="module", autouse=True)
def _model():
    # Loading MiniLM once for the module keeps each test to milliseconds.
    warm_up()


def understood(plan: ScenePlan, kind: str) -> list[dict]:
    return [m for m in plan.matches if m["kind"] == kind]


def test_the_reference_prompt_is_read_literally():
    plan = plan_scene("a red ball bouncing on a beach at sunset", seconds=4)
    assert (plan.setting, plan.time_of_day) == ("beach", "sunset")
    [ball] = plan.objects
    assert (ball.label, ball.shape, ball.motion) == ("ball", "sphere", "bounces")
    assert ball.color == srgb(*COLORS["red"][0])
    assert [s.camera for s in plan.shots] == ["static"]
    assert plan.duration_s == 4


def test_a_paraphrase_lands_on_the_same_concepts():
    plan = plan_scene("a crimson sphere hops along the shoreline at dusk", seconds=4)
    [ball] = plan.objects
    assert (ball.label, ball.motion) == ("ball", "bounces")
    assert understood(plan, "color")[0]["concept"] == "red"
    assert (plan.setting, plan.time_of_day) == ("beach", "sunset")
    shoreline = next(m for m in plan.matches if m["phrase"] == "shoreline")
    assert shoreline["how"] == "embedding"
    assert shoreline["concept"] == "beach"


@pytest.mark.parametrize(
    ("prompt", "kind", "word", "concept"),
    [
        ("a scarlet orb leaps across the seashore", "motion", "leaps", "bounces"),
        ("a tiny metal cylinder plummets", "motion", "plummets", "falls"),
        ("a glass marble is hurled across the room", "motion", "hurled", "thrown"),
        ("a cube resting in the woodland", "setting", "woodland", "forest"),
        ("two balls drifting among the nebula", "setting", "nebula", "space"),
        ("a cube on the boulevard", "setting", "boulevard", "street"),
        ("a box on the shoreline", "setting", "shoreline", "beach"),
        ("zooms toward a crate", "camera", "zooms", "push_in"),
        ("a glorious red cube", "mood", "glorious", "epic"),
        ("a creepy red cube", "mood", "creepy", "tense"),
    ],
)
def test_words_outside_the_vocabulary_are_matched_by_meaning(prompt, kind, word, concept):
    plan = plan_scene(prompt, seconds=4)
    match = next(m for m in plan.matches if m["phrase"] == word)
    assert (match["kind"], match["concept"], match["how"]) == (kind, concept, "embedding")
    assert match["score"] >= 0.5


def test_unrelated_words_are_not_forced_onto_a_concept():
    plan = plan_scene("an amazing ball sits there", seconds=2)
    amazing = next(m for m in plan.matches if m["phrase"] == "amazing")
    assert amazing["concept"] is None
    assert [o.label for o in plan.objects] == ["ball"]


def test_an_empty_prompt_gets_sensible_defaults_and_says_so():
    plan = plan_scene("", seconds=3)
    assert (plan.setting, plan.time_of_day, plan.mood) == ("studio", "day", "calm")
    [ball] = plan.objects
    assert ball.motion == "falls"
    assert ball.position[1] > 1.5  # dropped from above, into view
    defaults = {m["kind"] for m in plan.matches if m["how"] == "default"}
    assert {"setting", "time", "lighting", "mood", "camera", "object"} <= defaults


def test_nothing_moving_gets_a_moving_camera_and_a_landscape_a_pan():
    still = plan_scene("a blue cube on a table", seconds=2)
    assert still.shots[0].camera == "orbit"
    landscape = plan_scene("a quiet desert at night", seconds=2)
    assert landscape.objects == []
    assert landscape.shots[0].camera == "pan"
    assert (landscape.setting, landscape.time_of_day, landscape.mood) == ("desert", "night", "calm")


def test_attributes_attach_to_their_own_nouns():
    plan = plan_scene("two small wooden crates slide past a huge blue metal ball", seconds=4)
    crates = [o for o in plan.objects if o.label == "crate"]
    [ball] = [o for o in plan.objects if o.label == "ball"]
    assert len(crates) == 2
    assert all(c.material == "wood" and c.motion == "slides" for c in crates)
    assert crates[0].size < 0.35 < ball.size
    assert (ball.material, ball.motion, ball.color) == ("metal", "static", srgb(*COLORS["blue"][0]))
    assert len({c.id for c in crates}) == 2


def test_orbit_is_a_camera_move_only_in_the_camera_s_voice():
    moon = plan_scene("a moon orbits a planet", seconds=4)
    assert [o.motion for o in moon.objects] == ["orbits", "static"]
    assert moon.shots[0].camera == "static"
    shot = plan_scene("the camera orbits a red cube", seconds=4)
    assert shot.shots[0].camera == "orbit"
    assert [o.motion for o in shot.objects] == ["static"]


def test_camera_moves_named_in_order_become_shots():
    plan = plan_scene("a ball rolls, static shot, then the camera pushes in", seconds=4)
    assert [(s.camera, s.duration_s) for s in plan.shots] == [("static", 2.0), ("push_in", 2.0)]


def test_quoted_dialogue_is_timed_inside_the_clip_and_given_to_its_speaker():
    plan = plan_scene('@alice says "welcome to the beach" while a ball rolls by', seconds=4)
    [line] = plan.dialogue
    assert line.text == "welcome to the beach"
    assert 0.2 <= line.start_s <= 4 - (0.4 + 0.36 * 4)
    figure = next(o for o in plan.objects if o.cameo == "alice")
    assert line.speaker == figure.id
    # The quote is speech, not scene: "beach" inside it does not move the scene to a beach.
    assert plan.setting == "studio"


def test_a_narrator_line_has_no_speaker():
    plan = plan_scene('a ball falls. "and then it fell"', seconds=3)
    assert [(d.text, d.speaker) for d in plan.dialogue] == [("and then it fell", None)]


def test_a_storyboard_becomes_shots_with_their_cameras_and_one_scene():
    plan = plan_scene(
        "",
        seconds=6,
        storyboard=[
            {"prompt": "a red ball bounces on a beach at sunset", "seconds": 4},
            {"description": "the red ball rolls to a stop", "camera": "push-in"},
        ],
    )
    assert [(s.camera, s.duration_s) for s in plan.shots] == [("static", 4.0), ("push_in", 2.0)]
    assert plan.duration_s == 6
    assert (plan.setting, plan.time_of_day) == ("beach", "sunset")
    assert any(m["how"] == "storyboard" for m in plan.matches)


def test_staging_keeps_movers_near_the_stage_and_above_ground():
    plan = plan_scene("a ball is thrown while a crate slides and a cube falls", seconds=4)
    for obj in plan.objects:
        assert abs(obj.position[0]) < 4 and abs(obj.position[2]) < 2
        assert obj.position[1] >= obj.size - 1e-9
    thrown = next(o for o in plan.objects if o.motion == "thrown")
    assert thrown.velocity[0] > 0 and thrown.velocity[1] > 0


def test_planning_is_deterministic():
    a = plan_scene("a crimson sphere hops along the shoreline at dusk", seconds=4).to_dict()
    b = plan_scene("a crimson sphere hops along the shoreline at dusk", seconds=4).to_dict()
    assert a == b


def test_the_shared_embedder_gives_unit_vectors_and_loads_once_across_threads():
    texts = ["a red ball", "a crimson sphere", "the quarterly tax filing deadline"]
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda _: embeddings.embed(texts), range(4)))
    assert all(np.array_equal(rows[0], r) for r in rows[1:])
    vectors = rows[0]
    assert vectors.shape == (3, embeddings.DIM) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    # Paraphrases sit much closer together than unrelated text.
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2
    assert embeddings.embed([]).shape == (0, embeddings.DIM)
