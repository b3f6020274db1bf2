"""A test-only URLconf: the real routes plus views that fail on purpose.

Used with ``@pytest.mark.urls("tests.core.urls_for_tests")``. Django takes the error handlers
from the root URLconf, so the real ones are re-exported here.
"""

from django.core.exceptions import PermissionDenied, SuspiciousOperation, ValidationError
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.models import Notification
from config.urls import handler400, handler403, handler404, handler500, urlpatterns
from core.errors import AuthenticationRequired, Conflict
from core.idempotency import idempotent

LEAKED_TEXT = "s3cr3t-internal-detail"


class _Line(serializers.Serializer):
    sku = serializers.CharField()
    qty = serializers.IntegerField(min_value=1)


class _OrderInput(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    lines = _Line(many=True, required=False)


class ExplodingApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError(LEAKED_TEXT)


def exploding_plain_view(request):
    raise RuntimeError(LEAKED_TEXT)


def forbidden_plain_view(request):
    raise PermissionDenied(LEAKED_TEXT)


def plain_form_view(request):
    return HttpResponse(f"{len(request.POST)} fields")


def suspicious_plain_view(request):
    raise SuspiciousOperation(LEAKED_TEXT)


@require_GET
def plain_get_only_view(request):
    return HttpResponse("ok")


def plain_teapot_view(request):
    return HttpResponse("<p>teapot</p>", status=418, content_type="text/html")


class AuthRequiredApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise AuthenticationRequired()


class DictDetailApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise InvalidToken("Token is invalid")


class ModelRefusalApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise ValidationError({"starts_at": ["Enter a valid date/time."]}, code="invalid")


class StaffOnlyApi(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request):
        return Response({"ok": True})


class OrderApi(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        data = _OrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data, status=201)


class _NotificationRow(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "created_at"]


class NewestFirstListApi(ListAPIView):
    """Keyset pagination over a UUIDv7 primary key, newest first."""

    permission_classes = [AllowAny]
    serializer_class = _NotificationRow
    queryset = Notification.objects.all()
    ordering = ("-id",)


class ByTimeListApi(NewestFirstListApi):
    """A two-field keyset with mixed directions and ties on the first field."""

    ordering = ("-created_at", "id")


class IdempotentNoteApi(APIView):
    """Creates a notification for the caller: an idempotent endpoint scoped per user."""

    @idempotent
    def post(self, request):
        kind = str(request.data.get("kind", ""))
        if not kind:
            raise Conflict("kind is required for this test.", code="kind_missing", param="kind")
        note = Notification.objects.create(user=request.user, kind=kind)
        response = Response({"id": str(note.id), "kind": kind}, status=201)
        response["Location"] = f"/api/v1/test/notes/{note.id}"
        response["X-Not-Replayed"] = "1"
        return response


urlpatterns = [
    path("api/v1/test/notes", IdempotentNoteApi.as_view()),
    path("api/v1/test/newest", NewestFirstListApi.as_view()),
    path("api/v1/test/by-time", ByTimeListApi.as_view()),
    path("api/v1/test/explode", ExplodingApi.as_view()),
    path("api/v1/test/explode-plain", exploding_plain_view),
    path("api/v1/test/forbidden-plain", forbidden_plain_view),
    path("api/v1/test/teapot", plain_teapot_view),
    path("api/v1/test/get-only", plain_get_only_view),
    path("api/v1/test/plain-form", plain_form_view),
    path("api/v1/test/suspicious", suspicious_plain_view),
    path("api/v1/test/staff-only", StaffOnlyApi.as_view()),
    path("api/v1/test/auth-required", AuthRequiredApi.as_view()),
    path("api/v1/test/model-refusal", ModelRefusalApi.as_view()),
    path("api/v1/test/dict-detail", DictDetailApi.as_view()),
    path("api/v1/test/orders", OrderApi.as_view()),
    *urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
