"""Posts (published clips) and everything people do with them, feed sessions and preferences.

Who may see a post is the clip's business (generation.selectors.clips_visible_q): a post adds the
caption, its counters and its place in feeds, never a second visibility rule.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

from core.embeddings import DIM
from core.ids import uuid7

POST_PREFIX = "post_"
COMMENT_PREFIX = "cmt_"
SESSION_PREFIX = "fs_"
CAPTION_MAX = 2200
COMMENT_MAX = 1000


def prefixed(prefix: str, value: uuid.UUID) -> str:
    return f"{prefix}{value.hex}"


def parse_prefixed(prefix: str, value: str) -> uuid.UUID | None:
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    try:
        return uuid.UUID(value[len(prefix) :])
    except ValueError:
        return None


class Post(models.Model):
    """A clip its creator published, with a caption. Deleting the post unpublishes the clip.

    Counters live on the row and only ever move by ``F()`` updates in the same transaction as
    the row they count, so they are exact under concurrency and a page reads them with no join
    or COUNT. Remix counts are the lineage graph's (remix.LineageNode.children_count).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    clip = models.OneToOneField("generation.Clip", on_delete=models.CASCADE, related_name="post")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    caption = models.TextField(blank=True, max_length=CAPTION_MAX)
    # The job's prompt, copied at publication (it never changes) so search needs no join.
    prompt = models.TextField(blank=True)
    hashtags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    search = models.GeneratedField(
        expression=SearchVector("caption", "prompt", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # MiniLM embedding of prompt + caption (unit length): "more like what you liked".
    embedding = VectorField(dimensions=DIM, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    likes_count = models.PositiveIntegerField(default=0)
    comments_count = models.PositiveIntegerField(default=0)
    views_count = models.PositiveBigIntegerField(default=0)
    completions_count = models.PositiveBigIntegerField(default=0)
    watch_ms = models.PositiveBigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["author", "-id"], name="post_author_idx"),
            GinIndex(fields=["hashtags"], name="post_hashtags_gin"),
            GinIndex(fields=["search"], name="post_search_gin"),
            HnswIndex(
                name="post_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"post {self.id} by {self.author_id}"

    @property
    def public_id(self) -> str:
        return prefixed(POST_PREFIX, self.id)


class Like(models.Model):
    id = models.BigAutoField(primary_key=True)
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="likes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "post"], name="like_unique")]
        indexes = [models.Index(fields=["user", "-id"], name="like_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} likes {self.post_id}"


class Comment(models.Model):
    """A comment, or a reply to one (one level: ``parent`` is always a top-level comment).

    Trust and safety can remove a comment (``removed_at``): it is then hidden from everyone but
    its author, who sees it marked removed, and so are the replies of a removed top-level
    comment, until it is restored. The post's ``comments_count`` counts what others can see:
    comments not removed whose thread is not removed. ``replies_count`` counts the replies not
    removed.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    body = models.TextField(max_length=COMMENT_MAX)
    replies_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    removal_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["post", "parent", "id"], name="comment_thread_idx")]

    def __str__(self) -> str:
        return f"comment {self.id} on {self.post_id}"

    @property
    def public_id(self) -> str:
        return prefixed(COMMENT_PREFIX, self.id)

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None


class View(models.Model):
    """One viewing: how long, and whether it played to the end."""

    id = models.BigAutoField(primary_key=True)
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    watch_ms = models.PositiveIntegerField()
    completed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="view_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} watched {self.post_id} for {self.watch_ms} ms"


class NotInterested(models.Model):
    """ "Not interested" / "see less like this": the post leaves the user's feeds and its
    author and neighbours in meaning rank lower for them."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "post"], name="not_interested_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} not interested in {self.post_id}"


class FeedPreferences(models.Model):
    """Steering text (and its embeddings) and whether For You is personalised."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="feed_preferences",
    )
    steering = models.CharField(max_length=300, blank=True)
    steering_more = VectorField(dimensions=DIM, null=True, blank=True)
    steering_less = VectorField(dimensions=DIM, null=True, blank=True)
    steering_set_at = models.DateTimeField(null=True, blank=True)
    personalized = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"feed preferences of {self.user_id}"


class FeedSession(models.Model):
    """A ranked For You order, fixed when the session starts: pages are slices of it, so
    scrolling neither repeats nor skips while new posts arrive."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    post_ids = ArrayField(models.UUIDField())
    # Where each page ends in post_ids: the per-page rules cut pages, so a page may be shorter
    # than the size asked for when the rules hold items back for the next one.
    page_ends = ArrayField(models.PositiveIntegerField())
    # {post uuid hex: {"reason": str, "score": float, "source": str}}
    explain = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="feed_session_user_idx")]

    def __str__(self) -> str:
        return f"feed session {self.id}"

    @property
    def public_id(self) -> str:
        return prefixed(SESSION_PREFIX, self.id)


class ForYouList(models.Model):
    """A user's For You order, ranked ahead of time by a worker (feed.tasks.build_for_you):
    starting a session copies it instead of ranking on the request. It holds post ids only;
    every rule that depends on current state (blocks, moderation, teen ratings, "not
    interested", removed cameo appearances) is applied again whenever a page is read."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
    )
    # The order and page cuts for ``page_size``, in FeedSession's shape, so a session is a copy.
    page_size = models.PositiveSmallIntegerField()
    post_ids = ArrayField(models.UUIDField())
    page_ends = ArrayField(models.PositiveIntegerField())
    explain = models.JSONField(default=dict)
    # Per item of post_ids: author, remix chain and rank by score, to cut pages of another size
    # without ranking again.
    authors = ArrayField(models.UUIDField())
    chains = ArrayField(models.CharField(max_length=64))
    ranks = ArrayField(models.PositiveIntegerField())
    # "<count>:<max id>" of the user's follows when ranked: a follow or unfollow since changes
    # it, and the list is ranked again.
    follows_key = models.CharField(max_length=40)
    built_at = models.DateTimeField()
    # Set by a change the next session must show (steering, "not interested", personalisation):
    # the list is not served again until it is ranked after that change.
    stale_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"For You list of {self.user_id}"
