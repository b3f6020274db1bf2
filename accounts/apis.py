"""Thin HTTP layer for accounts: parse, call one service or selector, serialize."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts import selectors, services
from accounts.serializers import (
    AcceptInputSerializer,
    ApiKeyCreatedSerializer,
    ApiKeyInputSerializer,
    ApiKeySerializer,
    AvatarInputSerializer,
    BlockSerializer,
    ControlsSerializer,
    FollowEdgeSerializer,
    MarkReadInputSerializer,
    MeSerializer,
    MyControlsSerializer,
    NotificationSerializer,
    ParentalEventSerializer,
    ParentalInvitationSerializer,
    ParentalLinkSerializer,
    ProfileUpdateInputSerializer,
    RegisterInputSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
    UserDetailSerializer,
    controls_body,
    parental_link_body,
)
from core.idempotency import idempotent
from core.pagination import list_body, paginate_queryset, parse_limit
from core.throttling import AuthRateThrottle, IPRateThrottle


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [IPRateThrottle, AuthRateThrottle]

    @extend_schema(request=RegisterInputSerializer, responses={201: MeSerializer}, tags=["auth"])
    @idempotent
    def post(self, request):
        data = RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(MeSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"], responses={200: TokenPairSerializer})
class TokenApi(TokenObtainPairView):
    """Exchange handle + password for an access token (15 min) and a refresh token."""

    throttle_classes = [IPRateThrottle, AuthRateThrottle]


@extend_schema(tags=["auth"])
class TokenRefreshApi(TokenRefreshView):
    serializer_class = TokenRefreshSerializer
    throttle_classes = [IPRateThrottle, AuthRateThrottle]


class MeApi(APIView):
    @extend_schema(responses=MeSerializer, tags=["me"])
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=ProfileUpdateInputSerializer, responses=MeSerializer, tags=["me"])
    def patch(self, request):
        data = ProfileUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        user = services.user_update_profile(user=request.user, **data.validated_data)
        return Response(MeSerializer(user).data)


class MeAvatarApi(APIView):
    @extend_schema(
        request={"multipart/form-data": AvatarInputSerializer}, responses=MeSerializer, tags=["me"]
    )
    def put(self, request):
        data = AvatarInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_set_avatar(user=request.user, upload=data.validated_data["avatar"])
        return Response(MeSerializer(user).data)


class UserDetailApi(APIView):
    @extend_schema(responses=UserDetailSerializer, tags=["users"])
    def get(self, request, handle: str):
        user = selectors.user_get_detail_for_viewer(handle=handle, viewer=request.user)
        return Response(UserDetailSerializer(user).data)


class FollowApi(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["users"])
    def post(self, request, handle: str):
        target = selectors.user_get_for_viewer(handle=handle, viewer=request.user)
        services.user_follow(follower=request.user, followee=target)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None}, tags=["users"])
    def delete(self, request, handle: str):
        target = selectors.user_get_for_viewer(handle=handle, viewer=request.user)
        services.user_unfollow(follower=request.user, followee=target)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BlockApi(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["users"])
    def post(self, request, handle: str):
        # Blocking must work even on someone who already blocked you, so no visibility check.
        target = selectors.user_get_active(handle=handle)
        services.user_block(blocker=request.user, blocked=target)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None}, tags=["users"])
    def delete(self, request, handle: str):
        target = selectors.user_get_active(handle=handle)
        services.user_unblock(blocker=request.user, blocked=target)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["users"])
class FollowersApi(ListAPIView):
    serializer_class = FollowEdgeSerializer
    ordering = ("-id",)

    def get_queryset(self):
        target = selectors.user_get_for_viewer(
            handle=self.kwargs["handle"], viewer=self.request.user
        )
        return selectors.followers_for_viewer(user=target, viewer=self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        edges = selectors.edge_people(page, side="follower")
        return self.get_paginated_response(FollowEdgeSerializer(edges, many=True).data)


@extend_schema(tags=["users"])
class FollowingApi(FollowersApi):
    def get_queryset(self):
        target = selectors.user_get_for_viewer(
            handle=self.kwargs["handle"], viewer=self.request.user
        )
        return selectors.following_for_viewer(user=target, viewer=self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        edges = selectors.edge_people(page, side="followee")
        return self.get_paginated_response(FollowEdgeSerializer(edges, many=True).data)


@extend_schema(tags=["me"])
class MyBlocksApi(ListAPIView):
    serializer_class = BlockSerializer
    ordering = ("-id",)

    def get_queryset(self):
        return selectors.blocks_of(user=self.request.user)


class ApiKeysApi(ListAPIView):
    serializer_class = ApiKeySerializer
    ordering = ("-id",)

    def get_queryset(self):
        return selectors.api_keys_of(user=self.request.user)

    @extend_schema(tags=["api keys"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ApiKeyInputSerializer, responses={201: ApiKeyCreatedSerializer}, tags=["api keys"]
    )
    def post(self, request):
        # Not idempotent on purpose: replaying would mean storing the raw key to show it again.
        data = ApiKeyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = services.api_key_create(user=request.user, name=data.validated_data["name"])
        body = ApiKeyCreatedSerializer(key, context={"raw_key": raw}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    @extend_schema(responses={200: ApiKeySerializer}, tags=["api keys"])
    def delete(self, request, key_id):
        key = selectors.api_key_get_for_user(key_id=key_id, user=request.user)
        services.api_key_revoke(key=key)
        return Response(ApiKeySerializer(key).data)


@extend_schema(tags=["notifications"])
class NotificationsApi(ListAPIView):
    serializer_class = NotificationSerializer
    ordering = ("-id",)

    def get_queryset(self):
        unread = self.request.query_params.get("unread") in {"1", "true"}
        return selectors.notifications_of(user=self.request.user, unread_only=unread)


class NotificationsReadApi(APIView):
    @extend_schema(request=MarkReadInputSerializer, responses={200: None}, tags=["notifications"])
    def post(self, request):
        data = MarkReadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = services.notifications_mark_read(
            user=request.user, ids=data.validated_data.get("ids")
        )
        return Response({"marked_read": count})


# --- Parental controls ------------------------------------------------------------------------


class ParentalInvitationsApi(APIView):
    """The parent (an adult account) creates a code for their teen to accept."""

    @extend_schema(request=None, responses={201: ParentalInvitationSerializer}, tags=["parental"])
    def post(self, request):
        invitation, code = services.parental_invitation_create(parent=request.user)
        body = {
            "object": "parental.invitation",
            "id": invitation.public_id,
            "code": code,
            "expires_at": invitation.expires_at.isoformat(),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class ParentalInvitationAcceptApi(APIView):
    """The teen, signed in to the teen account, accepts the parent's code."""

    throttle_classes = [IPRateThrottle, AuthRateThrottle]

    @extend_schema(
        request=AcceptInputSerializer, responses={201: ParentalLinkSerializer}, tags=["parental"]
    )
    def post(self, request):
        data = AcceptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.parental_link_accept(teen=request.user, code=data.validated_data["code"])
        return Response(parental_link_body(link), status=status.HTTP_201_CREATED)


class ParentalLinksApi(APIView):
    """Links the caller is a party to, as parent or teen (removed ones included)."""

    @extend_schema(responses={200: ParentalLinkSerializer(many=True)}, tags=["parental"])
    def get(self, request):
        rows, cursor = paginate_queryset(
            selectors.parental_links_of(user=request.user),
            ordering=("-id",),
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
        )
        return Response(list_body([parental_link_body(link) for link in rows], cursor))


class ParentalLinkDetailApi(APIView):
    @extend_schema(responses={200: ParentalLinkSerializer}, tags=["parental"])
    def get(self, request, link_id: str):
        link = selectors.parental_link_get_for_user(link_id=link_id, user=request.user)
        return Response(parental_link_body(link))


class ParentalLinkRevokeApi(APIView):
    @extend_schema(request=None, responses={200: ParentalLinkSerializer}, tags=["parental"])
    def post(self, request, link_id: str):
        link = selectors.parental_link_get_for_user(link_id=link_id, user=request.user)
        link = services.parental_link_revoke(link=link, actor=request.user)
        return Response(parental_link_body(link))


class ParentalControlsApi(APIView):
    """A link's controls: both sides read them, only the parent changes them."""

    @extend_schema(responses={200: ControlsSerializer}, tags=["parental"])
    def get(self, request, link_id: str):
        link = selectors.parental_link_get_for_user(link_id=link_id, user=request.user)
        return Response(controls_body(link))

    @extend_schema(
        request=ControlsSerializer, responses={200: ControlsSerializer}, tags=["parental"]
    )
    def patch(self, request, link_id: str):
        link = selectors.parental_link_get_for_user(link_id=link_id, user=request.user)
        data = ControlsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.parental_controls_update(
            link=link, actor=request.user, **data.validated_data
        )
        return Response(controls_body(link))


class ParentalEventsApi(APIView):
    """The link's history (who changed what, when), for both sides."""

    @extend_schema(responses={200: ParentalEventSerializer(many=True)}, tags=["parental"])
    def get(self, request, link_id: str):
        link = selectors.parental_link_get_for_user(link_id=link_id, user=request.user)
        rows, cursor = paginate_queryset(
            selectors.parental_events_of(link=link),
            ordering=("id",),
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
        )
        return Response(list_body(ParentalEventSerializer(rows, many=True).data, cursor))


class MyParentalControlsApi(APIView):
    """The teen's view: the controls that apply to them now, and from which links."""

    @extend_schema(responses={200: MyControlsSerializer}, tags=["parental"])
    def get(self, request):
        controls = selectors.parental_controls_for(request.user)
        links = selectors.parental_links_of(user=request.user).filter(
            teen=request.user, revoked_at__isnull=True
        )
        return Response(
            {
                "object": "parental.controls",
                "applies": controls is not None,
                "controls": controls_body(controls) if controls is not None else None,
                "links": [parental_link_body(link) for link in links.order_by("id")],
            }
        )
