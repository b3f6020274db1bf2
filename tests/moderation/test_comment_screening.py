"""Comments are screened when they are written, with the input classifier under the comment
policy: a blocked comment is a 422 in the error shape naming the reason, the refusal is
recorded, screening fails closed, and the policy's floor on a labelled set of comments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import Unprocessable
from feed.models import Comment
from moderation.classifiers.text import TEEN_SENSITIVE, classify
from moderation.models import ScreeningDecision
from moderation.policy import COMMENT_BENIGN_MARGIN, COMMENT_THRESHOLD
from moderation.screening import comment_screen, comment_thresholds
from tests.factories import TeenFactory, UserFactory
from tests.feed.helpers import publish
from tests.fixtures import client_for
from tests.support.errors import assert_error

# Written for this measurement: none of these comments is a comment exemplar
# (moderation.classifiers.lexicon) nor was used to choose the thresholds.
EVALSET = Path(__file__).parent / "comment_evalset.jsonl"


def _comment(client, post, body):
    return client.post(f"/api/v1/posts/{post.public_id}/comments", {"body": body}, format="json")


@pytest.mark.django_db(transaction=True)
def test_a_harmful_comment_is_refused_with_422_and_the_refusal_is_recorded():
    post = publish(UserFactory())
    author = UserFactory()
    response = _comment(client_for(author), post, "kill yourself, nobody wants you here")
    error = assert_error(response, 422, code="content_policy_self_harm", param="body")
    assert "self-harm" in error["message"] and "harassment" in error["message"]
    assert not Comment.objects.exists()
    post.refresh_from_db()
    assert post.comments_count == 0
    decision = ScreeningDecision.objects.get()
    assert (decision.subject_type, decision.phase, decision.verdict) == (
        "comment",
        "comment",
        "block",
    )
    assert decision.user_ref == f"user:{author.pk}"
    assert decision.context["post"] == post.public_id
    assert {r["category"] for r in decision.reasons} == {"self_harm", "harassment"}

    ok = _comment(client_for(author), post, "the lighting in this is gorgeous")
    assert ok.status_code == 201, ok.content
    # Allowed comments are not recorded.
    assert ScreeningDecision.objects.count() == 1


@pytest.mark.django_db
def test_names_of_real_people_are_fine_in_a_comment():
    """The real-person refusal is about generating a likeness; a comment generates none."""
    text = "this looks like something taylor swift would post"
    assert "real_person" in classify([text]).categories
    post = publish(UserFactory())
    assert _comment(client_for(UserFactory()), post, text).status_code == 201


def test_comment_thresholds_are_stricter_for_teens(settings):
    adult, teen = comment_thresholds(teen=False), comment_thresholds(teen=True)
    assert set(adult) == set(settings.MODERATION_THRESHOLDS)
    for category, limit in adult.items():
        assert limit == COMMENT_THRESHOLD
        expected = limit - settings.MODERATION_TEEN_MARGIN if category in TEEN_SENSITIVE else limit
        assert teen[category] == pytest.approx(expected)


@pytest.mark.django_db(transaction=True)
def test_a_comment_on_a_teens_post_is_screened_with_the_teen_thresholds():
    text = "take your clothes off for me"
    with pytest.raises(Unprocessable):
        comment_screen(text=text, author=UserFactory(), post_author=UserFactory())
    with pytest.raises(Unprocessable):
        comment_screen(text=text, author=UserFactory(), post_author=TeenFactory())
    contexts = [d.context["teen"] for d in ScreeningDecision.objects.order_by("created_at")]
    assert contexts == [False, True]


@pytest.mark.django_db(transaction=True)
def test_comment_screening_fails_closed_with_503(monkeypatch):
    from moderation.classifiers import text

    def broken(texts):
        raise OSError("model files unreadable")

    post = publish(UserFactory())
    monkeypatch.setattr("core.embeddings.embed", broken)
    monkeypatch.setattr(text, "_state", {})
    response = _comment(client_for(UserFactory()), post, "nice one")
    assert_error(response, 503, code="screening_unavailable", param="body")
    assert not Comment.objects.exists()


def test_the_comment_policy_on_the_labelled_comment_set():
    """Measured here (2 cores, under load, about 30 s): of 26 harmful comments the comment
    policy blocks 15 and of 61 everyday comments it blocks 2, where the prompt policy blocks
    4 and 0. The floor below fails if the policy or the exemplars drift."""
    rows = [json.loads(line) for line in EVALSET.read_text().splitlines() if line.strip()]
    harmful = [r for r in rows if r["label"] != "none"]
    benign = [r for r in rows if r["label"] == "none"]
    limits = comment_thresholds(teen=False)

    def blocked(row, **policy) -> bool:
        return classify([row["text"]], **policy).flagged

    comment_policy = {"kind": "comment", "limits": limits, "min_margin": COMMENT_BENIGN_MARGIN}
    caught = sum(blocked(r, **comment_policy) for r in harmful)
    false_blocks = sum(blocked(r, **comment_policy) for r in benign)
    prompt_caught = sum(blocked(r) for r in harmful)
    assert caught >= 14, caught
    assert false_blocks <= 3, false_blocks
    assert caught > prompt_caught + 8
