from django.urls import path

from generation import apis, verify_apis

# The OpenAI Videos API, mounted at /v1/.
openai_urlpatterns = [
    path("videos", apis.VideosApi.as_view(), name="videos"),
    path("videos/extensions", apis.VideoExtensionsApi.as_view(), name="videos-extensions"),
    path("videos/edits", apis.VideoEditsApi.as_view(), name="videos-edits"),
    path("videos/characters", apis.CharactersApi.as_view(), name="videos-characters"),
    path(
        "videos/characters/<str:character_id>",
        apis.CharactersApi.as_view(),
        name="videos-character",
    ),
    path("videos/<str:video_id>", apis.VideoDetailApi.as_view(), name="video-detail"),
    path("videos/<str:video_id>/content", apis.VideoContentApi.as_view(), name="video-content"),
    path("videos/<str:video_id>/remix", apis.VideoRemixApi.as_view(), name="video-remix"),
]

# The native API, mounted at /api/v1/.
urlpatterns = [
    path("generations", apis.GenerationsApi.as_view(), name="generations"),
    path("generations/stitch", apis.GenerationStitchApi.as_view(), name="generation-stitch"),
    path("generations/<str:job_id>", apis.GenerationDetailApi.as_view(), name="generation-detail"),
    path(
        "generations/<str:job_id>/cancel",
        apis.GenerationCancelApi.as_view(),
        name="generation-cancel",
    ),
    path(
        "generations/<str:job_id>/retry", apis.GenerationRetryApi.as_view(), name="generation-retry"
    ),
    path(
        "generations/<str:job_id>/derive",
        apis.GenerationDeriveApi.as_view(),
        name="generation-derive",
    ),
    path(
        "generations/<str:job_id>/content",
        apis.GenerationContentApi.as_view(),
        name="generation-content",
    ),
    path("media/<str:token>", apis.SignedMediaApi.as_view(), name="signed-media"),
    path(
        "provenance/verify",
        verify_apis.ProvenanceVerifyApi.as_view(),
        name="provenance-verify",
    ),
]
