"""HTTP layer for posts, interactions and feeds: parse, call one service or selector, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import list_body, paginate_queryset, parse_limit
from feed import selectors, services
from feed.serializers import (
    CommentInputSerializer,
    CommentListSerializer,
    CommentSerializer,
    FeedPageSerializer,
    PostListSerializer,
    PostReportInputSerializer,
    PostSerializer,
    PostUpdateInputSerializer,
    PreferencesInputSerializer,
    PreferencesSerializer,
    PublishInputSerializer,
    ReportCreatedSerializer,
    SteeringInputSerializer,
    ViewInputSerializer,
    comment_body,
    feed_row_item,
    post_body,
)
from remix.apis import PAGE_PARAMETERS


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _one(post, viewer) -> dict:
    return post_body(post, selectors.page_context([post], viewer=viewer))


def _post_list(request, queryset) -> Response:
    limit = parse_limit(request.query_params.get("limit"))
    posts, next_cursor = paginate_queryset(
        queryset, ordering=("-id",), cursor=request.query_params.get("cursor"), limit=limit
    )
    ctx = selectors.page_context(posts, viewer=request.user)
    return Response(list_body([post_body(p, ctx) for p in posts], next_cursor))


def _feed_response(request, page: services.FeedPage) -> Response:
    data = (
        list(page.notices[:1]) if page.notices and page.notices[0]["type"] == "take_a_break" else []
    )
    data += [feed_row_item(row, page.explain.get(row["id"].hex) or {}) for row in page.posts]
    data += [n for n in page.notices if n["type"] == "daily_limit"]
    body = list_body(data, page.next_cursor)
    body["session_id"] = page.session_id
    return Response(body)


class PostsApi(APIView):
    @extend_schema(request=PublishInputSerializer, responses={201: PostSerializer}, tags=["posts"])
    def post(self, request):
        post = services.post_publish(
            user=request.user, **_valid(PublishInputSerializer, request.data)
        )
        return Response(_one(post, request.user), status=status.HTTP_201_CREATED)


class PostDetailApi(APIView):
    def get_permissions(self):
        # Share links open for anyone the post is public to, signed in or not.
        return [AllowAny()] if self.request.method == "GET" else super().get_permissions()

    @extend_schema(responses={200: PostSerializer}, tags=["posts"])
    def get(self, request, post_id: str):
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        return Response(_one(post, request.user))

    @extend_schema(
        request=PostUpdateInputSerializer, responses={200: PostSerializer}, tags=["posts"]
    )
    def patch(self, request, post_id: str):
        changes = _valid(PostUpdateInputSerializer, request.data)
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        post = services.post_update(post=post, actor=request.user, **changes)
        return Response(_one(post, request.user))

    @extend_schema(request=None, responses={204: None}, tags=["posts"])
    def delete(self, request, post_id: str):
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        services.post_delete(post=post, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LikeApi(APIView):
    @extend_schema(request=None, responses={200: PostSerializer}, tags=["posts"])
    def post(self, request, post_id: str):
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        services.like_add(post=post, user=request.user)
        post.refresh_from_db(fields=["likes_count"])
        return Response(_one(post, request.user))

    @extend_schema(request=None, responses={200: PostSerializer}, tags=["posts"])
    def delete(self, request, post_id: str):
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        services.like_remove(post=post, user=request.user)
        post.refresh_from_db(fields=["likes_count"])
        return Response(_one(post, request.user))


class CommentsApi(APIView):
    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("parent_id", str, description="List the replies to this comment."),
        ],
        responses={200: CommentListSerializer},
        tags=["posts"],
    )
    def get(self, request, post_id: str):
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        parent = None
        if request.query_params.get("parent_id"):
            parent = selectors.comment_get_for_viewer(
                comment_id=request.query_params["parent_id"], user=request.user
            )
        limit = parse_limit(request.query_params.get("limit"))
        rows, next_cursor = paginate_queryset(
            selectors.comments_of(post=post, user=request.user, parent=parent),
            ordering=("id",),
            cursor=request.query_params.get("cursor"),
            limit=limit,
        )
        return Response(list_body([comment_body(c) for c in rows], next_cursor))

    @extend_schema(
        request=CommentInputSerializer, responses={201: CommentSerializer}, tags=["posts"]
    )
    def post(self, request, post_id: str):
        data = _valid(CommentInputSerializer, request.data)
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        parent = None
        if data.get("parent_id"):
            parent = selectors.comment_get_for_viewer(
                comment_id=data["parent_id"], user=request.user
            )
        comment = services.comment_create(
            post=post, author=request.user, body=data["body"], parent=parent
        )
        return Response(comment_body(comment), status=status.HTTP_201_CREATED)


class CommentDetailApi(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["posts"])
    def delete(self, request, comment_id: str):
        comment = selectors.comment_get_for_viewer(comment_id=comment_id, user=request.user)
        services.comment_delete(comment=comment, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ViewApi(APIView):
    @extend_schema(request=ViewInputSerializer, responses={204: None}, tags=["posts"])
    def post(self, request, post_id: str):
        data = _valid(ViewInputSerializer, request.data)
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        services.view_record(post=post, user=request.user, **data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotInterestedApi(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["posts"])
    def post(self, request, post_id: str):
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        services.not_interested_add(post=post, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReportApi(APIView):
    @extend_schema(
        request=PostReportInputSerializer, responses={201: ReportCreatedSerializer}, tags=["posts"]
    )
    def post(self, request, post_id: str):
        data = _valid(PostReportInputSerializer, request.data)
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        report = services.post_report(post=post, reporter=request.user, **data)
        return Response(
            {"object": "report", "id": report.public_id, "status": report.status},
            status=status.HTTP_201_CREATED,
        )


class PostRemixesApi(APIView):
    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: PostListSerializer}, tags=["posts"])
    def get(self, request, post_id: str):
        post = selectors.post_get_for_viewer(post_id=post_id, user=request.user)
        limit = parse_limit(request.query_params.get("limit"))
        posts, next_cursor = selectors.post_remixes_page(
            post=post, user=request.user, cursor=request.query_params.get("cursor"), limit=limit
        )
        ctx = selectors.page_context(posts, viewer=request.user)
        return Response(list_body([post_body(p, ctx) for p in posts], next_cursor))


class ProfilePostsApi(APIView):
    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: PostListSerializer}, tags=["posts"])
    def get(self, request, handle: str):
        return _post_list(request, selectors.profile_posts(handle=handle, viewer=request.user))


class SearchApi(APIView):
    @extend_schema(
        parameters=[*PAGE_PARAMETERS, OpenApiParameter("q", str, required=True)],
        responses={200: PostListSerializer},
        tags=["posts"],
    )
    def get(self, request):
        query = request.query_params.get("q", "")
        return _post_list(request, selectors.search_posts(query=query, viewer=request.user))


class CameoPostsApi(APIView):
    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: PostListSerializer}, tags=["posts"])
    def get(self, request, handle: str):
        return _post_list(request, selectors.cameo_posts(handle=handle, viewer=request.user))


class HashtagApi(APIView):
    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: PostListSerializer}, tags=["posts"])
    def get(self, request, tag: str):
        return _post_list(request, selectors.hashtag_posts(tag=tag, viewer=request.user))


class FollowingFeedApi(APIView):
    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: FeedPageSerializer}, tags=["feed"])
    def get(self, request):
        page = services.following_feed_page(
            user=request.user,
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
        )
        return _feed_response(request, page)


class ForYouFeedApi(APIView):
    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: FeedPageSerializer}, tags=["feed"])
    def get(self, request):
        page = services.for_you_page(
            user=request.user,
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
        )
        return _feed_response(request, page)


def _preferences(prefs) -> dict:
    return {
        "object": "feed.preferences",
        "steering": prefs.steering or None,
        "personalized": prefs.personalized,
    }


class SteeringApi(APIView):
    @extend_schema(
        request=SteeringInputSerializer, responses={200: PreferencesSerializer}, tags=["feed"]
    )
    def put(self, request):
        prefs = services.steering_set(
            user=request.user, text=_valid(SteeringInputSerializer, request.data)["text"]
        )
        return Response(_preferences(prefs))

    @extend_schema(request=None, responses={204: None}, tags=["feed"])
    def delete(self, request):
        services.steering_clear(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreferencesApi(APIView):
    @extend_schema(responses={200: PreferencesSerializer}, tags=["feed"])
    def get(self, request):
        return Response(_preferences(selectors.preferences_of(request.user)))

    @extend_schema(
        request=PreferencesInputSerializer, responses={200: PreferencesSerializer}, tags=["feed"]
    )
    def patch(self, request):
        data = _valid(PreferencesInputSerializer, request.data)
        prefs = services.personalization_set(user=request.user, enabled=data["personalized"])
        return Response(_preferences(prefs))
