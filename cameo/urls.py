from django.urls import path

from cameo import apis

C = "cameos/<str:cameo_id>"

# The native API, mounted at /api/v1/.
urlpatterns = [
    path("cameos", apis.CameosApi.as_view(), name="cameos"),
    path("cameos/challenges", apis.ChallengesApi.as_view(), name="cameo-challenges"),
    path(
        "cameos/challenges/<str:challenge_id>/recording",
        apis.ChallengeRecordingApi.as_view(),
        name="cameo-challenge-recording",
    ),
    path("cameos/characters", apis.CharactersApi.as_view(), name="cameo-characters"),
    path("cameos/requests", apis.AccessRequestsApi.as_view(), name="cameo-requests"),
    path("cameos/handles/<str:handle>", apis.CameoByHandleApi.as_view(), name="cameo-by-handle"),
    path(C, apis.CameoDetailApi.as_view(), name="cameo-detail"),
    path(f"{C}/revoke", apis.CameoRevokeApi.as_view(), name="cameo-revoke"),
    path(f"{C}/grants", apis.GrantsApi.as_view(), name="cameo-grants"),
    path(f"{C}/grants/<str:grant_id>", apis.GrantDetailApi.as_view(), name="cameo-grant"),
    path(
        f"{C}/grants/<str:grant_id>/accept",
        apis.GrantDecisionApi.as_view(),
        name="cameo-grant-accept",
    ),
    path(
        f"{C}/grants/<str:grant_id>/decline",
        apis.GrantDeclineApi.as_view(),
        name="cameo-grant-decline",
    ),
    path(f"{C}/appearances", apis.AppearancesApi.as_view(), name="cameo-appearances"),
    path(
        f"{C}/appearances/<str:appearance_id>",
        apis.AppearanceDetailApi.as_view(),
        name="cameo-appearance",
    ),
    path(f"{C}/ledger", apis.LedgerApi.as_view(), name="cameo-ledger"),
]
