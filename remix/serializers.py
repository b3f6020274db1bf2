"""Lineage objects as the API shows them."""

from __future__ import annotations

from rest_framework import serializers

from generation.models import public_id
from remix.selectors import LineageItem, LineageSummary


def lineage_clip(item: LineageItem) -> dict:
    node = item.node
    return {
        "object": "lineage.clip",
        "id": public_id(item.clip.job_id),
        "creator": item.clip.user.handle,
        "created_at": item.clip.created_at.isoformat(),
        "kind": item.kind,
        "distance": item.distance,
        "depth": node.depth if node else 0,
        "remix_count": node.children_count if node else 0,
        "total_remix_count": node.descendants_count if node else 0,
    }


def lineage(summary: LineageSummary) -> dict:
    node = summary.node
    return {
        "object": "lineage",
        "id": public_id(summary.clip.job_id),
        "creator": summary.clip.user.handle,
        "depth": node.depth if node else 0,
        "parents": [lineage_clip(item) for item in summary.parents],
        "original": lineage_clip(summary.original) if summary.original else None,
        "remix_count": node.children_count if node else 0,
        "total_remix_count": node.descendants_count if node else 0,
        "remixes_per_hour": round(summary.velocity["remixes_per_hour"], 6),
        "tree_remixes_per_hour": round(summary.velocity["tree_remixes_per_hour"], 6),
    }


class LineageClipSerializer(serializers.Serializer):
    """Documents a clip in a lineage list (rendered by :func:`lineage_clip`)."""

    object = serializers.CharField(help_text="Always `lineage.clip`.")
    id = serializers.CharField(help_text="The clip's video id.")
    creator = serializers.CharField(help_text="Handle of the clip's creator.")
    created_at = serializers.DateTimeField()
    kind = serializers.CharField(
        allow_null=True,
        help_text="How it was made from its (first) parent: `remix`, `extension`, `edit`, "
        "`cameo_swap` or `stitch`; null for an original.",
    )
    distance = serializers.IntegerField(
        allow_null=True, help_text="Generations from the clip asked about (ancestors, descendants)."
    )
    depth = serializers.IntegerField(help_text="Generations below its original.")
    remix_count = serializers.IntegerField(help_text="Clips made directly from it.")
    total_remix_count = serializers.IntegerField(help_text="Clips made from it at any depth.")


class LineageClipListSerializer(serializers.Serializer):
    object = serializers.CharField()
    data = LineageClipSerializer(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class LineageSerializer(serializers.Serializer):
    """Documents a clip's lineage (rendered by :func:`lineage`)."""

    object = serializers.CharField(help_text="Always `lineage`.")
    id = serializers.CharField()
    creator = serializers.CharField()
    depth = serializers.IntegerField()
    parents = LineageClipSerializer(many=True, help_text="The parents you may see.")
    original = LineageClipSerializer(
        allow_null=True, help_text="The original of the chain, when you may see it."
    )
    remix_count = serializers.IntegerField()
    total_remix_count = serializers.IntegerField()
    remixes_per_hour = serializers.FloatField(help_text="Direct remixes per hour, time-decayed.")
    tree_remixes_per_hour = serializers.FloatField(
        help_text="Remixes per hour anywhere under its original, time-decayed."
    )
