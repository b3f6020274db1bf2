"""HTTP layer for lineage: a clip's place in the remix graph and paged views around it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import list_body, parse_limit
from remix import selectors
from remix.serializers import (
    LineageClipListSerializer,
    LineageSerializer,
    lineage,
    lineage_clip,
)

PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The next_cursor of the previous page."),
    OpenApiParameter("limit", int, description="Items per page, 1-100 (default 20)."),
]


class LineageApi(APIView):
    @extend_schema(responses={200: LineageSerializer}, tags=["lineage"])
    def get(self, request, video_id: str):
        clip = selectors.clip_get_for_lineage(video_id=video_id, user=request.user)
        return Response(lineage(selectors.lineage_summary(clip=clip, user=request.user)))


def _page(request, video_id: str, selector) -> Response:
    limit = parse_limit(request.query_params.get("limit"))
    cursor = request.query_params.get("cursor")
    clip = selectors.clip_get_for_lineage(video_id=video_id, user=request.user)
    items, next_cursor = selector(clip=clip, user=request.user, cursor=cursor, limit=limit)
    return Response(list_body([lineage_clip(item) for item in items], next_cursor))


def _list_schema(summary: str):
    return extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: LineageClipListSerializer},
        tags=["lineage"],
        summary=summary,
    )


class LineageAncestorsApi(APIView):
    @_list_schema("Ancestors, nearest first, up to the original(s)")
    def get(self, request, video_id: str):
        return _page(request, video_id, selectors.ancestors_page)


class LineageChildrenApi(APIView):
    @_list_schema("Clips made directly from this one")
    def get(self, request, video_id: str):
        return _page(request, video_id, selectors.children_page)


class LineageDescendantsApi(APIView):
    @_list_schema("Clips made from this one at any depth, breadth first")
    def get(self, request, video_id: str):
        return _page(request, video_id, selectors.descendants_page)


class LineageSiblingsApi(APIView):
    @_list_schema("Other clips made from the same parent(s)")
    def get(self, request, video_id: str):
        return _page(request, video_id, selectors.siblings_page)
