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
    ApiKeyCreatedSerializer,
    ApiKeyInputSerializer,
    ApiKeySerializer,
    AvatarInputSerializer,
    BlockSerializer,
    FollowEdgeSerializer,
    MarkReadInputSerializer,
    MeSerializer,
    NotificationSerializer,
    ProfileUpdateInputSerializer,
    RegisterInputSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
    UserDetailSerializer,
)
from core.idempotency import idempotent
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
