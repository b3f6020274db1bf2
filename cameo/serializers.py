from __future__ import annotations

from rest_framework import serializers

from cameo.models import (
    Appearance,
    Audience,
    Cameo,
    CameoGrant,
    Challenge,
    LedgerEntry,
    RevocationPolicy,
)
from generation.apis import media_token


def _ts(value) -> int | None:
    return int(value.timestamp()) if value else None


class CameoSerializer(serializers.ModelSerializer):
    """What someone allowed to see a cameo, but not its owner, sees."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    owner = serializers.CharField(source="owner.handle")

    class Meta:
        model = Cameo
        fields = ["id", "object", "kind", "handle", "name", "owner", "status", "created_at"]

    def get_object(self, obj) -> str:
        return "cameo"


class CameoOwnerSerializer(CameoSerializer):
    """The owner's view: settings, verification outcome and lifecycle."""

    class Meta:
        model = Cameo
        fields = [
            *CameoSerializer.Meta.fields,
            "audience",
            "instructions",
            "restrictions",
            "revocation_policy",
            "verification",
            "verified_at",
            "revoked_at",
            "rights_attested_at",
        ]


class ChallengeSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()

    class Meta:
        model = Challenge
        fields = ["id", "object", "digits", "turns", "created_at", "expires_at"]

    def get_object(self, obj) -> str:
        return "cameo.challenge"


class GrantSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    cameo_id = serializers.CharField(source="cameo.public_id")
    grantee = serializers.CharField(source="grantee.handle")

    class Meta:
        model = CameoGrant
        fields = [
            "id",
            "object",
            "cameo_id",
            "grantee",
            "status",
            "requested",
            "created_at",
            "decided_at",
            "revoked_at",
        ]

    def get_object(self, obj) -> str:
        return "cameo.grant"


class AppearanceSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    video_id = serializers.CharField(source="job.public_id")
    user = serializers.CharField(source="user.handle")
    job_status = serializers.CharField(source="job.status")
    clip = serializers.SerializerMethodField()

    class Meta:
        model = Appearance
        fields = [
            "id",
            "object",
            "video_id",
            "user",
            "via",
            "job_status",
            "clip",
            "ledger_entry",
            "created_at",
            "removed_at",
        ]

    def get_object(self, obj) -> str:
        return "cameo.appearance"

    def get_clip(self, obj) -> dict | None:
        clip = getattr(obj.job, "clip", None)
        if clip is None:
            return None
        body = {
            "published": clip.published_at is not None,
            "audience": clip.audience,
            "removed": clip.removed_at is not None,
            "urls": None,
        }
        request = self.context.get("request")
        if clip.removed_at is None and request is not None:
            # The owner watches other people's drafts through signed, expiring links: the
            # only way to a draft's media for anyone but its creator.
            body["urls"] = {
                variant: request.build_absolute_uri(f"/api/v1/media/{media_token(clip, variant)}")
                for variant in ("video", "thumbnail")
            }
        return body


class LedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = [
            "seq",
            "actor",
            "action",
            "data",
            "at",
            "prev_hash",
            "entry_hash",
            "signature",
            "key_id",
        ]


class SettingsInputSerializer(serializers.Serializer):
    audience = serializers.ChoiceField(choices=Audience.choices, required=False)
    instructions = serializers.CharField(max_length=500, allow_blank=True, required=False)
    restrictions = serializers.ListField(
        child=serializers.CharField(max_length=60), max_length=20, required=False
    )
    revocation_policy = serializers.ChoiceField(choices=RevocationPolicy.choices, required=False)


class HandleInputSerializer(serializers.Serializer):
    handle = serializers.CharField(max_length=31)


class PolicyInputSerializer(serializers.Serializer):
    policy = serializers.ChoiceField(choices=RevocationPolicy.choices, required=False)


class RecordingInputSerializer(serializers.Serializer):
    recording = serializers.FileField()


class CharacterInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    video = serializers.FileField(help_text="A short clip or an image (PNG, JPEG, WebP).")
    handle = serializers.CharField(max_length=31, required=False)
    rights_attested = serializers.BooleanField(
        default=False, help_text="You hold the rights to what the file shows."
    )


class CharacterSerializer(serializers.Serializer):
    """The OpenAI Videos API character shape, plus the handle prompts mention it by."""

    id = serializers.CharField(source="character_id")
    object = serializers.SerializerMethodField()
    name = serializers.CharField()
    handle = serializers.CharField()
    created_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "video.character"

    def get_created_at(self, obj) -> int:
        return _ts(obj.created_at)
