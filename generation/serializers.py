from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.engines.base import API_SIZES, NATIVE_SIZES
from generation.models import GenerationJob, JobStatus, public_id
from generation.services import PRIORITIES


def _ts(value) -> int | None:
    return int(value.timestamp()) if value else None


# --- OpenAI Videos API shape ---------------------------------------------------------------

OPENAI_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.IN_PROGRESS: "in_progress",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
    JobStatus.BLOCKED: "failed",
}


def openai_video(job: GenerationJob) -> dict:
    """The ``Video`` object of the OpenAI Videos API for a job."""
    error = None
    if job.status in (JobStatus.FAILED, JobStatus.BLOCKED, JobStatus.CANCELLED):
        error = {
            "code": job.error_code
            or ("cancelled" if job.status == JobStatus.CANCELLED else "failed"),
            "message": job.error_message
            or ("The job was cancelled." if job.status == JobStatus.CANCELLED else "Failed."),
        }
    seconds = job.seconds
    return {
        "id": job.public_id,
        "object": "video",
        "created_at": _ts(job.created_at),
        "completed_at": _ts(job.completed_at),
        "expires_at": None,
        "error": error,
        "model": job.model,
        "progress": job.progress,
        "prompt": job.prompt,
        "remixed_from_video_id": public_id(job.parent_id) if job.parent_id else None,
        "seconds": str(seconds),
        "size": job.size,
        "status": OPENAI_STATUS[job.status],
    }


class OpenAIVideoSerializer(serializers.Serializer):
    """Documents the OpenAI ``Video`` object (rendered by :func:`openai_video`)."""

    id = serializers.CharField()
    object = serializers.CharField(help_text="Always `video`.")
    created_at = serializers.IntegerField()
    completed_at = serializers.IntegerField(allow_null=True)
    expires_at = serializers.IntegerField(allow_null=True)
    error = serializers.DictField(allow_null=True)
    model = serializers.CharField()
    progress = serializers.IntegerField()
    prompt = serializers.CharField(allow_null=True)
    remixed_from_video_id = serializers.CharField(allow_null=True)
    seconds = serializers.CharField()
    size = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "in_progress", "completed", "failed"])


class OpenAIVideoListSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="Always `list`.")
    data = OpenAIVideoSerializer(many=True)
    first_id = serializers.CharField(allow_null=True)
    last_id = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


class OpenAICreateInputSerializer(serializers.Serializer):
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    model = serializers.CharField(required=False, allow_blank=True)
    seconds = serializers.CharField(required=False, allow_blank=True)
    size = serializers.CharField(required=False, allow_blank=True)
    input_reference = serializers.FileField(required=False, allow_empty_file=False)


class OpenAIRemixInputSerializer(serializers.Serializer):
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)


class OpenAIDerivedInputSerializer(serializers.Serializer):
    """Extensions and edits: ``video`` is ``{"id": ...}`` (JSON) or ``video[id]`` (multipart)."""

    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    seconds = serializers.CharField(required=False, allow_blank=True)


class DeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(help_text="Always `video.deleted`.")
    deleted = serializers.BooleanField()


# --- Native API ------------------------------------------------------------------------------


class StoryboardShotSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=1000)
    seconds = serializers.FloatField(min_value=0.5, max_value=20)
    camera = serializers.ChoiceField(
        choices=["static", "pan", "push_in", "dolly", "orbit", "crane"], required=False
    )


class GenerationCreateInputSerializer(serializers.Serializer):
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    model = serializers.CharField(required=False, allow_blank=True)
    seconds = serializers.IntegerField(required=False)
    size = serializers.ChoiceField(choices=list(API_SIZES + NATIVE_SIZES), required=False)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1)
    variants = serializers.IntegerField(required=False, min_value=1, max_value=4, default=1)
    priority = serializers.ChoiceField(choices=list(PRIORITIES), required=False, default="normal")
    storyboard = StoryboardShotSerializer(many=True, required=False, max_length=12)
    input_reference = serializers.FileField(required=False, allow_empty_file=False)


class GenerationSerializer(serializers.Serializer):
    """Native view of a job: everything the OpenAI shape has, plus plan, stage and seed."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    kind = serializers.CharField()
    status = serializers.CharField()
    stage = serializers.CharField()
    progress = serializers.IntegerField()
    prompt = serializers.CharField()
    model = serializers.CharField()
    engine = serializers.CharField()
    engine_version = serializers.CharField()
    seconds = serializers.IntegerField()
    size = serializers.CharField()
    seed = serializers.IntegerField()
    priority = serializers.IntegerField()
    variant_group = serializers.UUIDField(allow_null=True)
    variant_index = serializers.IntegerField()
    parent_id = serializers.SerializerMethodField()
    parent_ids = serializers.SerializerMethodField(
        help_text="Every video this one derives from, in order (several for a stitch)."
    )
    error = serializers.SerializerMethodField()
    plan = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)

    def get_object(self, obj) -> str:
        return "generation"

    def get_parent_id(self, obj) -> str | None:
        return public_id(obj.parent_id) if obj.parent_id else None

    def get_parent_ids(self, obj) -> list[str]:
        return [public_id(pk) for pk in obj.parent_ids]

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_error(self, obj):
        if not obj.error_code:
            return None
        return {
            "code": obj.error_code,
            "message": obj.error_message,
            "param": obj.error_param or None,
        }


class GenerationBatchSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="Always `list`.")
    data = GenerationSerializer(many=True)


class GenerationStitchInputSerializer(serializers.Serializer):
    """``POST /api/v1/generations/stitch``: one clip joining several, in order."""

    videos = serializers.ListField(
        child=serializers.CharField(max_length=80),
        min_length=2,
        max_length=16,
        help_text="The videos to join, in order (completed ones you may see and remix).",
    )
    prompt = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        help_text="What the stitch is; with `seconds`, also its closing shot.",
    )
    seconds = serializers.IntegerField(
        required=False, help_text="Seconds of a closing shot of `prompt` (none when omitted)."
    )


class GenerationDeriveInputSerializer(serializers.Serializer):
    """``POST /api/v1/generations/{id}/derive``: a remix, extension or edit of a clip."""

    kind = serializers.ChoiceField(choices=["remix", "extend", "edit"], default="remix")
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    seconds = serializers.IntegerField(
        required=False, help_text="For an extension: how many seconds to add."
    )
