"""``POST /api/v1/provenance/verify``: upload a video or image, learn where it came from."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import InvalidRequest, MontageError, PayloadTooLarge, Unprocessable
from core.throttling import IPRateThrottle
from generation.provenance.inspect import InspectionFailed, UnsupportedMedia
from generation.verification import media_verify

CHUNK = 1 << 20


class UnsupportedMediaType(MontageError):
    status_code = 415
    default_detail = "The file is not a video or image this server reads."
    default_code = "unsupported_media_type"


class VerifyRateThrottle(IPRateThrottle):
    scope = "verify"


class RawMediaParser(BaseParser):
    """A bare file as the body (``Content-Type: video/mp4`` and friends); the body is streamed
    by the view, not parsed here."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"_raw": stream}


def _too_large() -> PayloadTooLarge:
    limit = settings.PROVENANCE_VERIFY_MAX_BYTES
    return PayloadTooLarge(
        f"The file is larger than {limit // (1 << 20)} MiB.", code="file_too_large", param="file"
    )


def _spool(source, dest: Path) -> None:
    """Copies an upload or the request body to ``dest``, refusing it past the size limit."""
    limit = settings.PROVENANCE_VERIFY_MAX_BYTES
    written = 0
    with dest.open("wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise _too_large()
            out.write(chunk)
    if written == 0:
        raise InvalidRequest("The file is empty.", code="empty_file", param="file")


class ProvenanceVerifyApi(APIView):
    """Anyone may verify a file: provenance is for the people who meet a clip elsewhere."""

    permission_classes = [AllowAny]
    throttle_classes = [VerifyRateThrottle]
    parser_classes = [MultiPartParser, RawMediaParser]

    @extend_schema(
        operation_id="provenance_verify",
        summary="Verify a video or image: manifest, watermark, fingerprints, lineage, consent",
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
            "video/mp4": OpenApiTypes.BINARY,
            "image/png": OpenApiTypes.BINARY,
            "image/jpeg": OpenApiTypes.BINARY,
        },
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "A stripped re-upload",
                value={
                    "object": "provenance.verification",
                    "verdict": "identified",
                    "manifest": {"present": False, "state": "absent"},
                    "watermark": {"found": True, "payload": "212595bc60f2c510"},
                },
                response_only=True,
            )
        ],
        tags=["provenance"],
    )
    def post(self, request):
        length = request.META.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > settings.PROVENANCE_VERIFY_MAX_BYTES:
            raise _too_large()
        work = Path(tempfile.mkdtemp(prefix="montage-verify-"))
        try:
            path = work / "upload"
            if request.content_type.startswith("multipart/"):
                upload = request.FILES.get("file")
                if upload is None:
                    raise InvalidRequest(
                        "Send the video or image as the multipart field 'file'.",
                        code="missing_file",
                        param="file",
                    )
                _spool(upload, path)
            else:
                _spool(request, path)
            try:
                report = media_verify(path=path, viewer=request.user)
            except UnsupportedMedia as exc:
                raise UnsupportedMediaType(
                    "The file is not an MP4, QuickTime, PNG, JPEG or WebP file.", param="file"
                ) from exc
            except InspectionFailed as exc:
                raise Unprocessable(exc.message, code=exc.code, param="file") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return Response(report)
