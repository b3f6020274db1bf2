"""Publishing, editing and deleting posts over the API, with denied and malformed requests."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Notification
from feed.models import Comment, Like, NotInterested, Post, View
from generation.models import Clip, ClipAudience
from moderation.models import Report
from tests.factories import UserFactory
from tests.feed.helpers import client_for, draft, publish
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def stranger():
    return UserFactory()


def test_publish_sets_the_clip_publication_state(owner):
    clip = draft(owner, prompt="a cozy cabin in the snow")
    response = client_for(owner).post(
        "/api/v1/posts",
        {
            "video_id": clip.job.public_id,
            "caption": "winter #Cozy #cabin #cozy",
            "visibility": "followers",
            "allow_remix": False,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("post_")
    assert body["video_id"] == clip.job.public_id
    assert body["hashtags"] == ["cozy", "cabin"]
    assert body["visibility"] == "followers"
    assert body["allow_remix"] is False
    assert body["counts"] == {"likes": 0, "comments": 0, "remixes": 0, "views": 0, "completions": 0}
    assert body["share_url"].endswith(body["id"])
    clip.refresh_from_db()
    assert clip.audience == ClipAudience.FOLLOWERS
    assert clip.published_at is not None
    assert clip.allow_remix is False
    post = Post.objects.get(clip=clip)
    assert post.prompt == "a cozy cabin in the snow"
    assert len(post.embedding) == 384


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        ({}, "required", "video_id"),
        ({"video_id": "CLIP", "visibility": "everyone"}, "invalid_choice", "visibility"),
        ({"video_id": "CLIP", "caption": "x" * 2201}, "max_length", "caption"),
        ({"video_id": "CLIP", "allow_remix": "perhaps"}, "invalid", "allow_remix"),
    ],
)
def test_publish_refuses_malformed_input(owner, payload, code, param):
    clip = draft(owner)
    payload = {k: (clip.job.public_id if v == "CLIP" else v) for k, v in payload.items()}
    response = client_for(owner).post("/api/v1/posts", payload, format="json")
    assert_error(response, 400, code=code, param=param)
    assert not Post.objects.exists()
    clip.refresh_from_db()
    assert clip.published_at is None


def test_publish_someone_elses_draft_is_not_found(owner, stranger):
    clip = draft(owner)
    response = client_for(stranger).post(
        "/api/v1/posts", {"video_id": clip.job.public_id}, format="json"
    )
    assert_error(response, 404, code="video_not_found", param="video_id")
    assert not Post.objects.exists()


def test_publish_twice_conflicts_and_removed_clips_cannot_be_published(owner):
    post = publish(owner)
    response = client_for(owner).post(
        "/api/v1/posts", {"video_id": post.clip.job.public_id}, format="json"
    )
    assert_error(response, 409, code="already_published")
    removed = draft(owner, removed_at=timezone.now())
    response = client_for(owner).post(
        "/api/v1/posts", {"video_id": removed.job.public_id}, format="json"
    )
    assert_error(response, 404, code="video_not_found", param="video_id")
    assert Post.objects.count() == 1


def test_unauthenticated_writes_are_refused(anon_client, owner):
    post = publish(owner)
    assert anon_client.post("/api/v1/posts", {}, format="json").status_code == 401
    assert anon_client.post(f"/api/v1/posts/{post.public_id}/like").status_code == 401
    assert anon_client.delete(f"/api/v1/posts/{post.public_id}").status_code == 401
    assert anon_client.get("/api/v1/feed/for_you").status_code == 401
    # A public post's share link opens without signing in.
    assert anon_client.get(f"/api/v1/posts/{post.public_id}").status_code == 200


def test_edit_caption_by_author_only(owner, stranger):
    post = publish(owner, caption="old #one")
    url = f"/api/v1/posts/{post.public_id}"
    denied = client_for(stranger).patch(url, {"caption": "mine now"}, format="json")
    assert_error(denied, 403, code="not_post_author")
    malformed = client_for(owner).patch(url, {"caption": "x" * 2201}, format="json")
    assert_error(malformed, 400, code="max_length", param="caption")
    post.refresh_from_db()
    assert post.caption == "old #one"
    response = client_for(owner).patch(url, {"caption": "new #two"}, format="json")
    assert response.status_code == 200
    assert response.json()["hashtags"] == ["two"]
    post.refresh_from_db()
    assert (post.caption, post.hashtags, post.edited_at is not None) == ("new #two", ["two"], True)


def test_edit_visibility_moves_the_clip(owner, stranger):
    post = publish(owner)
    url = f"/api/v1/posts/{post.public_id}"
    client_for(owner).patch(url, {"visibility": "only_me"}, format="json")
    assert_error(client_for(stranger).get(url), 404, code="post_not_found", param="post_id")


def test_delete_unpublishes_and_takes_interactions_with_it(owner, stranger):
    post = publish(owner)
    url = f"/api/v1/posts/{post.public_id}"
    client_for(stranger).post(f"{url}/like")
    assert_error(client_for(stranger).delete(url), 403, code="not_post_author")
    assert Post.objects.filter(pk=post.pk).exists()
    assert client_for(owner).delete(url).status_code == 204
    assert not Post.objects.filter(pk=post.pk).exists()
    assert not Like.objects.exists()
    clip = Clip.objects.get(pk=post.clip_id)
    assert (clip.audience, clip.published_at) == (ClipAudience.ONLY_ME, None)
    assert_error(client_for(owner).get(url), 404, code="post_not_found", param="post_id")


@pytest.mark.parametrize("post_id", ["nope", "post_zz", "video_0123", "post_" + "0" * 31])
def test_malformed_post_ids_are_not_found(owner, post_id):
    response = client_for(owner).get(f"/api/v1/posts/{post_id}")
    assert_error(response, 404, code="post_not_found", param="post_id")


def test_like_unlike_idempotent_and_notifies_the_author(owner, stranger):
    post = publish(owner)
    client = client_for(stranger)
    url = f"/api/v1/posts/{post.public_id}/like"
    first = client.post(url)
    assert first.status_code == 200
    assert first.json()["counts"]["likes"] == 1
    assert first.json()["viewer"]["liked"] is True
    assert client.post(url).json()["counts"]["likes"] == 1
    notes = Notification.objects.filter(user=owner, kind="post.liked")
    assert notes.count() == 1
    assert notes.get().data == {"post_id": post.public_id, "video_id": post.clip.job.public_id}
    gone = client.delete(url)
    assert gone.json()["counts"]["likes"] == 0
    assert gone.json()["viewer"]["liked"] is False
    assert client.delete(url).json()["counts"]["likes"] == 0
    # Liking one's own post counts but does not notify.
    client_for(owner).post(url)
    assert Notification.objects.filter(user=owner, kind="post.liked").count() == 1


def test_comments_with_one_level_of_replies(owner, stranger):
    post = publish(owner)
    other = UserFactory()
    url = f"/api/v1/posts/{post.public_id}/comments"
    top = client_for(stranger).post(url, {"body": "lovely"}, format="json").json()
    reply = client_for(other).post(url, {"body": "agreed", "parent_id": top["id"]}, format="json")
    assert reply.status_code == 201
    deeper = client_for(owner).post(
        url, {"body": "thanks", "parent_id": reply.json()["id"]}, format="json"
    )
    # Answering a reply joins the same thread.
    assert deeper.json()["parent_id"] == top["id"]
    listing = client_for(owner).get(url).json()["data"]
    assert [c["body"] for c in listing] == ["lovely"]
    assert listing[0]["replies_count"] == 2
    replies = client_for(owner).get(url, {"parent_id": top["id"]}).json()["data"]
    assert [c["body"] for c in replies] == ["agreed", "thanks"]
    post.refresh_from_db()
    assert post.comments_count == 3
    kinds = sorted(
        Notification.objects.filter(user__in=[owner, stranger]).values_list("kind", flat=True)
    )
    assert kinds == ["comment.replied", "comment.replied", "post.commented", "post.commented"]


def test_comment_malformed_and_denied(owner, stranger):
    post = publish(owner)
    other_post = publish(owner)
    url = f"/api/v1/posts/{post.public_id}/comments"
    assert_error(
        client_for(stranger).post(url, {"body": ""}, format="json"), 400, code="blank", param="body"
    )
    assert_error(
        client_for(stranger).post(url, {"body": "x" * 1001}, format="json"),
        400,
        code="max_length",
        param="body",
    )
    foreign = client_for(stranger).post(
        f"/api/v1/posts/{other_post.public_id}/comments", {"body": "elsewhere"}, format="json"
    )
    response = client_for(stranger).post(
        url, {"body": "hi", "parent_id": foreign.json()["id"]}, format="json"
    )
    assert_error(response, 400, code="invalid_parent", param="parent_id")
    response = client_for(stranger).post(
        url, {"body": "hi", "parent_id": "cmt_nope"}, format="json"
    )
    assert_error(response, 404, code="comment_not_found", param="comment_id")
    assert Comment.objects.filter(post=post).count() == 0


def test_comment_delete_by_author_or_post_owner(owner, stranger):
    post = publish(owner)
    third = UserFactory()
    url = f"/api/v1/posts/{post.public_id}/comments"
    top = client_for(stranger).post(url, {"body": "one"}, format="json").json()
    client_for(third).post(url, {"body": "two", "parent_id": top["id"]}, format="json")
    mine = client_for(third).post(url, {"body": "three"}, format="json").json()
    denied = client_for(stranger).delete(f"/api/v1/comments/{mine['id']}")
    assert_error(denied, 403, code="not_comment_author")
    assert client_for(third).delete(f"/api/v1/comments/{mine['id']}").status_code == 204
    # The post's owner removes a thread: the reply goes with it, and the count follows.
    assert client_for(owner).delete(f"/api/v1/comments/{top['id']}").status_code == 204
    post.refresh_from_db()
    assert post.comments_count == 0
    assert not Comment.objects.exists()


def test_views_record_watch_time_and_completion(owner, stranger):
    post = publish(owner)
    url = f"/api/v1/posts/{post.public_id}/views"
    client = client_for(stranger)
    assert client.post(url, {"watch_ms": 1500}, format="json").status_code == 204
    assert client.post(url, {"watch_ms": 4000, "completed": True}, format="json").status_code == 204
    for bad in ({"watch_ms": -1}, {"watch_ms": "long"}, {}, {"watch_ms": 10**9}):
        assert client.post(url, bad, format="json").status_code == 400
    post.refresh_from_db()
    assert (post.views_count, post.completions_count, post.watch_ms) == (2, 1, 5500)
    assert View.objects.count() == 2


def test_not_interested_and_report(owner, stranger):
    post = publish(owner)
    client = client_for(stranger)
    assert client.post(f"/api/v1/posts/{post.public_id}/not_interested").status_code == 204
    assert client.post(f"/api/v1/posts/{post.public_id}/not_interested").status_code == 204
    assert NotInterested.objects.filter(user=stranger, post=post).count() == 1
    own = client_for(owner).post(f"/api/v1/posts/{post.public_id}/not_interested")
    assert_error(own, 400, code="own_post", param="post_id")
    url = f"/api/v1/posts/{post.public_id}/report"
    assert_error(
        client.post(url, {"reason": "boring"}, format="json"),
        400,
        code="invalid_reason",
        param="reason",
    )
    response = client.post(url, {"reason": "spam", "detail": "ads"}, format="json")
    assert response.status_code == 201, response.content
    report = Report.objects.get()
    assert (report.subject_type, report.subject_id, report.reason) == (
        "clip",
        post.clip.job.public_id,
        "spam",
    )
    assert response.json()["id"] == report.public_id
    assert_error(client.post(url, {"reason": "spam"}, format="json"), 409, code="already_reported")
    assert Report.objects.count() == 1


def test_comments_are_reported_through_moderation(owner, stranger):
    post = publish(owner)
    comment = client_for(owner).post(
        f"/api/v1/posts/{post.public_id}/comments", {"body": "rude words"}, format="json"
    )
    comment_id = comment.json()["id"]
    payload = {"subject_type": "comment", "subject_id": comment_id, "reason": "harassment"}
    response = client_for(stranger).post("/api/v1/reports", payload, format="json")
    assert response.status_code == 201, response.content
    report = Report.objects.get()
    assert (report.subject_type, report.subject_id) == ("comment", comment_id)
    assert report.case.subject_id == comment_id
    missing = client_for(stranger).post(
        "/api/v1/reports", {**payload, "subject_id": "cmt_" + "0" * 32}, format="json"
    )
    assert_error(missing, 404, code="subject_not_found", param="subject_id")
    hidden = publish(owner, visibility=ClipAudience.ONLY_ME)
    own_comment = client_for(owner).post(
        f"/api/v1/posts/{hidden.public_id}/comments", {"body": "note to self"}, format="json"
    )
    denied = client_for(stranger).post(
        "/api/v1/reports", {**payload, "subject_id": own_comment.json()["id"]}, format="json"
    )
    assert_error(denied, 404, code="subject_not_found", param="subject_id")
    assert Report.objects.count() == 1
