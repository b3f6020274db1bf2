from django.contrib import admin
from django.http import HttpResponseNotFound, HttpResponseServerError
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import health
from core.errors import error_response
from core.middleware import is_api_path

api_v1 = [
    path("", include("accounts.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]


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
