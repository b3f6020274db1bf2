from __future__ import annotations

from rest_framework import serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.serializers import TokenRefreshSerializer as _TokenRefreshSerializer

from accounts.authentication import INVALID_TOKEN_CHALLENGE
from accounts.models import ApiKey, Notification, User
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
