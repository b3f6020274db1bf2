from django.urls import path

from remix import apis

urlpatterns = [
    path("lineage/<str:video_id>", apis.LineageApi.as_view(), name="lineage"),
    path(
        "lineage/<str:video_id>/ancestors",
        apis.LineageAncestorsApi.as_view(),
        name="lineage-ancestors",
    ),
    path(
        "lineage/<str:video_id>/children",
        apis.LineageChildrenApi.as_view(),
        name="lineage-children",
    ),
    path(
        "lineage/<str:video_id>/descendants",
        apis.LineageDescendantsApi.as_view(),
        name="lineage-descendants",
    ),
    path(
        "lineage/<str:video_id>/siblings",
        apis.LineageSiblingsApi.as_view(),
        name="lineage-siblings",
    ),
]
