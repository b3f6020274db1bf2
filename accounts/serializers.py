from __future__ import annotations

from rest_framework import serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.serializers import TokenRefreshSerializer as _TokenRefreshSerializer

from accounts.authentication import INVALID_TOKEN_CHALLENGE
from accounts.models import (
    PARENTAL_MAX_DAILY_MINUTES,
    ApiKey,
    CameoAudienceCap,
    Notification,
    ParentalEvent,
    ParentalLink,
    User,
)
from core.errors import AuthenticationRequired


class PublicUserSerializer(serializers.ModelSerializer):
    """What anyone allowed to see a person sees."""

    object = serializers.SerializerMethodField()
    avatar_url = serializers.SerializerMethodField()
    viewer_follows = serializers.SerializerMethodField()
    follows_viewer = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "object",
            "handle",
            "display_name",
            "bio",
            "avatar_url",
            "date_joined",
            "viewer_follows",
            "follows_viewer",
        ]

    def get_object(self, obj) -> str:
        return "user"

    def get_avatar_url(self, obj) -> str | None:
        return obj.avatar.url if obj.avatar else None

    def get_viewer_follows(self, obj) -> bool | None:
        return getattr(obj, "viewer_follows", None)

    def get_follows_viewer(self, obj) -> bool | None:
        return getattr(obj, "follows_viewer", None)


class UserDetailSerializer(PublicUserSerializer):
    follower_count = serializers.IntegerField(read_only=True)
    following_count = serializers.IntegerField(read_only=True)

    class Meta(PublicUserSerializer.Meta):
        fields = [*PublicUserSerializer.Meta.fields, "follower_count", "following_count"]


class MeSerializer(PublicUserSerializer):
    """The owner's own view: includes private fields."""

    age_band = serializers.CharField(read_only=True)

    class Meta(PublicUserSerializer.Meta):
        fields = [
            "id",
            "object",
            "handle",
            "email",
            "display_name",
            "bio",
            "avatar_url",
            "birth_date",
            "age_band",
            "is_staff",
            "date_joined",
        ]


class RegisterInputSerializer(serializers.Serializer):
    handle = serializers.CharField(max_length=31)
    password = serializers.CharField(max_length=128, write_only=True)
    birth_date = serializers.DateField()
    email = serializers.EmailField(required=False, allow_null=True, allow_blank=True)
    display_name = serializers.CharField(max_length=60, required=False, allow_blank=True)


class ProfileUpdateInputSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=60, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=300, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False)


class AvatarInputSerializer(serializers.Serializer):
    # A plain file here: the service checks the size before decoding anything, then decodes
    # and re-encodes the image itself.
    avatar = serializers.FileField(allow_empty_file=False, use_url=False)


class TokenObtainSerializer(TokenObtainPairSerializer):
    """Login with handle (or @handle) and password."""

    username_field = "handle"

    def validate(self, attrs):
        attrs["handle"] = User.normalize_handle(attrs.get("handle", ""))
        data = super().validate(attrs)
        data["token_type"] = "Bearer"  # noqa: S105 - a scheme name, not a secret
        return data


class TokenRefreshSerializer(_TokenRefreshSerializer):
    """A refresh token that is malformed, expired, of the wrong type or whose user is gone is
    one clear 401 (the library's own error nests a dict in the message, and a deleted user
    would raise DoesNotExist)."""

    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except (TokenError, User.DoesNotExist) as exc:
            raise AuthenticationRequired(
                "The refresh token is invalid or expired.",
                code="invalid_refresh_token",
                param="refresh",
                headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE},
            ) from exc


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()


class ApiKeySerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    redacted = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "object", "name", "redacted", "created_at", "last_used_at", "revoked_at"]

    def get_object(self, obj) -> str:
        return "api_key"

    def get_redacted(self, obj) -> str:
        return f"mk_{obj.prefix}_…"


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.SerializerMethodField()

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]

    def get_key(self, obj) -> str:
        return self.context["raw_key"]


class ApiKeyInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class FollowEdgeSerializer(serializers.Serializer):
    """One row of a followers/following list: the person and when the edge was made."""

    user = PublicUserSerializer()
    since = serializers.DateTimeField(source="created_at")


class BlockSerializer(serializers.Serializer):
    user = PublicUserSerializer(source="blocked")
    since = serializers.DateTimeField(source="created_at")


class NotificationSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    actor = serializers.SlugRelatedField(slug_field="handle", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "object", "kind", "actor", "data", "created_at", "read_at"]

    def get_object(self, obj) -> str:
        return "notification"


class MarkReadInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=500)


# --- Parental controls ------------------------------------------------------------------------


def controls_body(source) -> dict:
    """The controls of a link, or the combined controls that apply to a teen
    (accounts.selectors.ParentalControls); ``null`` means the platform's teen default."""
    return {
        "personalization_off": source.personalization_off,
        "daily_feed_minutes": source.daily_feed_minutes,
        "daily_feed_items": source.daily_feed_items,
        "strangers_can_comment": source.strangers_can_comment,
        "cameo_audience_max": source.cameo_audience_max or None,
        "allow_remix": source.allow_remix,
    }


def parental_link_body(link: ParentalLink) -> dict:
    return {
        "object": "parental.link",
        "id": link.public_id,
        "parent": link.parent.handle,
        "teen": link.teen.handle,
        "status": "active" if link.is_active else "revoked",
        # Controls end when the teen reaches the adult age, though the link stays until one of
        # them removes it.
        "controls_apply": link.is_active and link.teen.is_teen,
        "created_at": link.created_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
        "controls": controls_body(link),
        "controls_updated_at": link.controls_updated_at.isoformat(),
    }


class ControlsSerializer(serializers.Serializer):
    """The parental controls. In a change, each field is optional and ``null`` returns a
    limit to the platform's teen default."""

    personalization_off = serializers.BooleanField(
        required=False, help_text="The For You feed is not personalised."
    )
    daily_feed_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=PARENTAL_MAX_DAILY_MINUTES,
        help_text="Minutes of watching a day after which the feed stops.",
    )
    daily_feed_items = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Feed items a day; only tighter than the platform's teen limit.",
    )
    strangers_can_comment = serializers.BooleanField(
        required=False,
        help_text="False: only people the teen follows (and linked parents) can comment on "
        "the teen's posts or reply to the teen's comments.",
    )
    cameo_audience_max = serializers.ChoiceField(
        choices=CameoAudienceCap.choices,
        required=False,
        allow_null=True,
        help_text="The widest audience the teen's cameo may have.",
    )
    allow_remix = serializers.BooleanField(
        required=False, help_text="False: the teen's posts are published with remixing off."
    )

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {sorted(unknown)[0]: "Unknown field."}, code="unknown_field"
            )
        return attrs


class ParentalLinkSerializer(serializers.Serializer):
    """Documents a parental link (rendered by :func:`parental_link_body`)."""

    object = serializers.CharField(help_text="Always `parental.link`.")
    id = serializers.CharField(help_text="`plink_<hex>`.")
    parent = serializers.CharField(help_text="The parent's handle.")
    teen = serializers.CharField(help_text="The teen's handle.")
    status = serializers.ChoiceField(choices=["active", "revoked"])
    controls_apply = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    controls = ControlsSerializer()
    controls_updated_at = serializers.DateTimeField()


class ParentalInvitationSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="Always `parental.invitation`.")
    id = serializers.CharField(help_text="`pinv_<hex>`.")
    code = serializers.CharField(help_text="Shown once: the teen enters it to accept.")
    expires_at = serializers.DateTimeField()


class AcceptInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40)


class MyControlsSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="Always `parental.controls`.")
    applies = serializers.BooleanField(help_text="Whether any parent's controls apply now.")
    controls = ControlsSerializer(allow_null=True)
    links = ParentalLinkSerializer(many=True)


class ParentalEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ParentalEvent
        fields = ["at", "actor", "action", "detail"]
