from django.urls import path

from feed import apis

urlpatterns = [
    path("posts", apis.PostsApi.as_view(), name="posts"),
    path("posts/<str:post_id>", apis.PostDetailApi.as_view(), name="post-detail"),
    path("posts/<str:post_id>/like", apis.LikeApi.as_view(), name="post-like"),
    path("posts/<str:post_id>/comments", apis.CommentsApi.as_view(), name="post-comments"),
    path("posts/<str:post_id>/views", apis.ViewApi.as_view(), name="post-views"),
    path(
        "posts/<str:post_id>/not_interested",
        apis.NotInterestedApi.as_view(),
        name="post-not-interested",
    ),
    path("posts/<str:post_id>/report", apis.ReportApi.as_view(), name="post-report"),
    path("posts/<str:post_id>/remixes", apis.PostRemixesApi.as_view(), name="post-remixes"),
    path("comments/<str:comment_id>", apis.CommentDetailApi.as_view(), name="comment-detail"),
    path("users/<str:handle>/posts", apis.ProfilePostsApi.as_view(), name="user-posts"),
    path("search/posts", apis.SearchApi.as_view(), name="search-posts"),
    path("hashtags/<str:tag>/posts", apis.HashtagApi.as_view(), name="hashtag-posts"),
    path("cameos/handles/<str:handle>/posts", apis.CameoPostsApi.as_view(), name="cameo-posts"),
    path("feed/following", apis.FollowingFeedApi.as_view(), name="feed-following"),
    path("feed/for_you", apis.ForYouFeedApi.as_view(), name="feed-for-you"),
    path("feed/steering", apis.SteeringApi.as_view(), name="feed-steering"),
    path("feed/preferences", apis.PreferencesApi.as_view(), name="feed-preferences"),
]
