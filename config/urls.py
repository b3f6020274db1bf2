from django.contrib import admin
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import (
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
    HttpResponseServerError,
)
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cameo import apis as cameo_apis
from core import health, metrics
from core.errors import error_response
from core.middleware import is_api_path
from generation.urls import openai_urlpatterns

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("generation.urls")),
    path("", include("remix.urls")),
    path("", include("cameo.urls")),
    path("", include("moderation.urls")),
    path("", include("feed.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    # Characters are cameos; these come before generation's routes, which answer 404 for them.
    path(
        "v1/videos/characters",
        cameo_apis.OpenAICharactersApi.as_view(),
        name="cameo-characters-openai",
    ),
    path(
        "v1/videos/characters/<str:character_id>",
        cameo_apis.OpenAICharacterDetailApi.as_view(),
        name="cameo-character-openai",
    ),
    # The OpenAI Videos API shape: clients set base_url to <host>/v1.
    path("v1/", include(openai_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    # The trust-and-safety console (server-rendered, session login).
    path("staff/", include("moderation.console.urls")),
]

# Django calls these for what fails outside DRF views: unmatched URLs, crashes in plain views
# or middleware, Django's own PermissionDenied, and SuspiciousOperation (which includes a body
# over DATA_UPLOAD_MAX_MEMORY_SIZE read by Django rather than by a DRF parser). Messages are
# generic on purpose: exception text may carry internals.


def handler400(request, exception=None):
    if not is_api_path(request.path):
        return HttpResponseBadRequest("<h1>Bad request</h1>")
    if isinstance(exception, RequestDataTooBig | TooManyFieldsSent):
        return error_response(
            "The request body is too large.", status=413, code="request_too_large"
        )
    return error_response("The request is invalid.", status=400, code="invalid_request")


def handler403(request, exception=None):
    if is_api_path(request.path):
        return error_response(
            "You do not have permission to perform this action.",
            status=403,
            code="permission_denied",
        )
    return HttpResponseForbidden("<h1>Forbidden</h1>")


def handler404(request, exception=None):
    if is_api_path(request.path):
        return error_response(f"No route {request.path}.", status=404, code="not_found")
    return HttpResponseNotFound("<h1>Not found</h1>")


def handler500(request):
    if is_api_path(request.path):
        return error_response(
            "The server had an error processing the request.", status=500, code="internal_error"
        )
    return HttpResponseServerError("<h1>Server error</h1>")
