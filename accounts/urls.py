from django.urls import path

from accounts import apis

urlpatterns = [
    path("auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/token", apis.TokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("me", apis.MeApi.as_view(), name="me"),
    path("me/avatar", apis.MeAvatarApi.as_view(), name="me-avatar"),
    path("me/blocks", apis.MyBlocksApi.as_view(), name="me-blocks"),
    path("users/<str:handle>", apis.UserDetailApi.as_view(), name="user-detail"),
    path("users/<str:handle>/follow", apis.FollowApi.as_view(), name="user-follow"),
    path("users/<str:handle>/block", apis.BlockApi.as_view(), name="user-block"),
    path("users/<str:handle>/followers", apis.FollowersApi.as_view(), name="user-followers"),
    path("users/<str:handle>/following", apis.FollowingApi.as_view(), name="user-following"),
    path("api-keys", apis.ApiKeysApi.as_view(), name="api-keys"),
    path("api-keys/<uuid:key_id>", apis.ApiKeyDetailApi.as_view(), name="api-key-detail"),
    path("notifications", apis.NotificationsApi.as_view(), name="notifications"),
    path("notifications/read", apis.NotificationsReadApi.as_view(), name="notifications-read"),
    # Parental controls.
    path(
        "accounts/parental/invitations",
        apis.ParentalInvitationsApi.as_view(),
        name="parental-invitations",
    ),
    path(
        "accounts/parental/invitations/accept",
        apis.ParentalInvitationAcceptApi.as_view(),
        name="parental-invitation-accept",
    ),
    path("accounts/parental/links", apis.ParentalLinksApi.as_view(), name="parental-links"),
    path(
        "accounts/parental/links/<str:link_id>",
        apis.ParentalLinkDetailApi.as_view(),
        name="parental-link",
    ),
    path(
        "accounts/parental/links/<str:link_id>/revoke",
        apis.ParentalLinkRevokeApi.as_view(),
        name="parental-link-revoke",
    ),
    path(
        "accounts/parental/links/<str:link_id>/controls",
        apis.ParentalControlsApi.as_view(),
        name="parental-link-controls",
    ),
    path(
        "accounts/parental/links/<str:link_id>/events",
        apis.ParentalEventsApi.as_view(),
        name="parental-link-events",
    ),
    path(
        "accounts/parental/controls", apis.MyParentalControlsApi.as_view(), name="parental-controls"
    ),
]
