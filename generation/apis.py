"""HTTP layer for generation: the OpenAI Videos API under /v1/ and the native API."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.core import signing
from django.http import FileResponse, HttpResponseBase, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import Forbidden, InvalidRequest, NotFound
from core.idempotency import idempotent
from core.pagination import list_body, paginate_queryset, parse_limit
from core.storage import media_url
from generation import selectors, services
from generation.models import Clip, ClipAudience, JobKind, JobStatus
from generation.serializers import (
    DeletedSerializer,
    GenerationBatchSerializer,
    GenerationCreateInputSerializer,
    GenerationDeriveInputSerializer,
    GenerationSerializer,
    GenerationStitchInputSerializer,
    OpenAICreateInputSerializer,
    OpenAIDerivedInputSerializer,
    OpenAIRemixInputSerializer,
    OpenAIVideoListSerializer,
    OpenAIVideoSerializer,
    openai_video,
)
from generation.services import (
    EXTENSION_SECONDS,
    OPENAI_SECONDS,
)

PARSERS = [JSONParser, MultiPartParser, FormParser]
VARIANTS = {"video": "video", "thumbnail": "thumbnail", "spritesheet": "spritesheet"}
POLL_AFTER_MS = "500"
REDIRECT_TO_STORE = OpenApiResponse(
    description="With object storage: a redirect to the object itself (a presigned URL that "
    "expires after MEDIA_REDIRECT_TTL seconds, or the CDN for media published to everyone)."
)


def _reference_object(request):
    """``input_reference`` given as an object (``{"image_url": "data:image/png;base64,..."}``
    in JSON, ``input_reference[image_url]`` in a form) instead of a file upload."""
    raw = request.data.get("input_reference")
    if isinstance(raw, dict):
        image_url, file_id = raw.get("image_url"), raw.get("file_id")
    else:
        image_url = request.data.get("input_reference[image_url]")
        file_id = request.data.get("input_reference[file_id]")
    if image_url is None and file_id is None:
        return None
    return services.reference_from_object(image_url=image_url, file_id=file_id)


def _video_response(job, *, status_code=200) -> Response:
    response = Response(openai_video(job), status=status_code)
    if job.status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS):
        response["openai-poll-after-ms"] = POLL_AFTER_MS
    return response


def _parent_ref(request) -> str:
    """``video`` of an extension or edit: ``{"id": ...}`` in JSON, ``video[id]`` in multipart."""
    video = request.data.get("video")
    if isinstance(video, dict) and isinstance(video.get("id"), str):
        return video["id"]
    ref = request.data.get("video[id]")
    if isinstance(ref, str) and ref:
        return ref
    if video is not None and hasattr(video, "read"):
        return _clip_id_from_upload(video)
    raise InvalidRequest("video.id is required.", code="missing_video", param="video")


def _clip_id_from_upload(upload) -> str:
    """An uploaded video names its clip through its own C2PA manifest, signed by this server.
    (The openai SDK can only send ``video`` as a file for extensions and edits.)"""
    from generation.pipeline import signing_credentials
    from generation.provenance.c2pa_sign import UnreadableMedia, read_manifest

    not_ours = InvalidRequest(
        "The uploaded video is not a clip made here (no intact manifest signed by this server); "
        "reference a completed video as video[id].",
        code="unknown_video",
        param="video",
    )
    try:
        manifest = read_manifest(upload.read(), signing_credentials().trust_anchors_pem)
    except UnreadableMedia as exc:
        raise not_ours from exc
    finally:
        upload.seek(0)
    job = manifest.get("job") or {}
    if manifest["state"] != "trusted" or not isinstance(job.get("job_id"), str):
        raise not_ours
    return job["job_id"]


def _completed_parent(request, ref: str):
    """The job to derive from: the caller's own, or the completed clip of anyone else that the
    caller may see. Whether it may be remixed (removed, held, closed to remixes, blocks) is for
    the lineage gate to say, with its reason; a clip the caller may not see is a plain 404."""
    try:
        parent = selectors.job_get_for_owner(job_id=ref, user=request.user)
    except NotFound:
        clip = selectors.clip_by_job_ref(ref)
        # A removed clip is passed on, so the gate can say it was taken down.
        if (
            clip is None
            or clip.job.deleted_at is not None
            or not (
                clip.removed_at is not None
                or selectors.clip_visible_to(clip=clip, user=request.user)
            )
        ):
            raise
        parent = clip.job
    if parent.status != JobStatus.COMPLETED:
        raise InvalidRequest(
            f"Video {ref} is {parent.status}; only a completed video can be used.",
            code="video_not_completed",
            param="video",
        )
    return parent


# --- OpenAI Videos API ------------------------------------------------------------------------


class VideosApi(APIView):
    parser_classes = PARSERS

    @extend_schema(
        request={
            "multipart/form-data": OpenAICreateInputSerializer,
            "application/json": OpenAICreateInputSerializer,
        },
        responses={200: OpenAIVideoSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_create",
    )
    @idempotent
    def post(self, request):
        reference_object = _reference_object(request)
        fields = request.data
        if reference_object is not None:
            fields = {k: v for k, v in request.data.items() if not k.startswith("input_reference")}
        data = OpenAICreateInputSerializer(data=fields)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        spec = services.job_spec_build(
            prompt=values["prompt"],
            model=values.get("model"),
            seconds=values.get("seconds"),
            size=values.get("size"),
            native=False,
            allowed_seconds=OPENAI_SECONDS,
            input_reference=reference_object or values.get("input_reference"),
        )
        (job,) = services.job_create(user=request.user, spec=spec)
        return _video_response(job)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", str, description="id of the last video of the previous page"),
            OpenApiParameter("limit", int),
            OpenApiParameter("order", str, enum=["asc", "desc"]),
        ],
        responses={200: OpenAIVideoListSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_list",
    )
    def get(self, request):
        order = request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be asc or desc.", code="invalid_order", param="order")
        limit = parse_limit(request.query_params.get("limit"))
        queryset = selectors.jobs_for_owner(user=request.user)
        after = request.query_params.get("after")
        if after:
            try:
                anchor = selectors.job_get_for_owner(job_id=after, user=request.user)
            except NotFound as exc:
                raise InvalidRequest(
                    f"after names no video of yours: {after!r}.",
                    code="invalid_cursor",
                    param="after",
                ) from exc
            queryset = queryset.filter(**{"pk__lt" if order == "desc" else "pk__gt": anchor.pk})
        rows = list(queryset.order_by("-pk" if order == "desc" else "pk")[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
        data = [openai_video(job) for job in rows]
        return Response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            }
        )


class VideoDetailApi(APIView):
    @extend_schema(
        responses={200: OpenAIVideoSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_retrieve",
    )
    def get(self, request, video_id: str):
        return _video_response(selectors.job_get_for_owner(job_id=video_id, user=request.user))

    @extend_schema(
        responses={200: DeletedSerializer}, tags=["videos (OpenAI)"], operation_id="videos_delete"
    )
    def delete(self, request, video_id: str):
        job = selectors.job_get_for_owner(job_id=video_id, user=request.user)
        services.job_delete(job=job, actor=request.user)
        return Response({"id": job.public_id, "object": "video.deleted", "deleted": True})


def _published_to_everyone(clip: Clip) -> bool:
    """Media anyone at all may fetch: the only media that may have an unsigned (CDN) link."""
    return (
        clip.published_at is not None
        and clip.audience == ClipAudience.PUBLIC
        and clip.removed_at is None
        and clip.held_at is None
        and not clip.age_restricted
    )


def clip_direct_url(clip: Clip, variant: str, *, expires: int) -> str | None:
    """A link to the stored object itself (presigned, or on the CDN host for media published
    to everyone), or None when the storage is one only Montage can serve (the filesystem)."""
    field = getattr(clip, VARIANTS[variant])
    return media_url(
        field.storage, field.name, expires=expires, public=_published_to_everyone(clip)
    )


def _serve_clip_file(clip: Clip, variant: str) -> HttpResponseBase:
    direct = clip_direct_url(clip, variant, expires=settings.MEDIA_REDIRECT_TTL)
    if direct is not None:
        # The object store serves the bytes; Montage has only checked who may have them.
        response = HttpResponseRedirect(direct)
        response["Cache-Control"] = "private, no-store"
        return response
    field = getattr(clip, VARIANTS[variant])
    content_type = mimetypes.guess_type(field.name)[0] or "application/octet-stream"
    response = FileResponse(field.open("rb"), content_type=content_type)
    response["Content-Length"] = str(field.size)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _variant(request) -> str:
    variant = request.query_params.get("variant", "video")
    if variant not in VARIANTS:
        raise InvalidRequest(
            "variant must be video, thumbnail or spritesheet.",
            code="invalid_variant",
            param="variant",
        )
    return variant


def _clip_of(job) -> Clip:
    clip = getattr(job, "clip", None) if job.status == JobStatus.COMPLETED else None
    if clip is None or clip.removed_at is not None:
        raise NotFound(
            f"Video {job.public_id} has no content (status {job.status}).",
            code="video_not_ready",
            param="video_id",
        )
    return clip


class BinaryContentMixin:
    """Media endpoints answer with bytes whatever the client accepts (the openai SDK sends
    ``Accept: application/binary``); JSON is only for errors."""

    def perform_content_negotiation(self, request, force=False):
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type


class VideoContentApi(BinaryContentMixin, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("variant", str, enum=list(VARIANTS))],
        responses={(200, "video/mp4"): OpenApiTypes.BINARY, 302: REDIRECT_TO_STORE},
        tags=["videos (OpenAI)"],
        operation_id="videos_download_content",
    )
    def get(self, request, video_id: str):
        variant = _variant(request)
        try:
            clip = selectors.clip_get_for_viewer(job_id=video_id, user=request.user)
        except NotFound:
            # The owner of an unfinished job learns why there is no content yet.
            _clip_of(selectors.job_get_for_owner(job_id=video_id, user=request.user))
            raise
        return _serve_clip_file(clip, variant)


class VideoRemixApi(APIView):
    parser_classes = PARSERS

    @extend_schema(
        request=OpenAIRemixInputSerializer,
        responses={200: OpenAIVideoSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_remix",
    )
    @idempotent
    def post(self, request, video_id: str):
        data = OpenAIRemixInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = _completed_parent(request, video_id)
        job = services.job_derive(
            user=request.user,
            parent=parent,
            kind=JobKind.REMIX,
            prompt=data.validated_data["prompt"],
        )
        return _video_response(job)


class VideoExtensionsApi(APIView):
    parser_classes = PARSERS

    @extend_schema(
        request=OpenAIDerivedInputSerializer,
        responses={200: OpenAIVideoSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_extend",
    )
    @idempotent
    def post(self, request):
        data = OpenAIDerivedInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = _completed_parent(request, _parent_ref(request))
        job = services.job_derive(
            user=request.user,
            parent=parent,
            kind=JobKind.EXTEND,
            prompt=data.validated_data["prompt"],
            extra_seconds=services.validate_seconds(
                data.validated_data.get("seconds"), allowed=EXTENSION_SECONDS
            ),
        )
        return _video_response(job)


class VideoEditsApi(APIView):
    parser_classes = PARSERS

    @extend_schema(
        request=OpenAIDerivedInputSerializer,
        responses={200: OpenAIVideoSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_edit",
    )
    @idempotent
    def post(self, request):
        data = OpenAIDerivedInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = _completed_parent(request, _parent_ref(request))
        job = services.job_derive(
            user=request.user,
            parent=parent,
            kind=JobKind.EDIT,
            prompt=data.validated_data["prompt"],
        )
        return _video_response(job)


class CharactersApi(APIView):
    """``/v1/videos/characters``: characters are cameos of pets, objects and drawings, owned by
    the cameo app. Without it installed, the route answers 404 in the error shape rather than
    falling through to the video routes."""

    schema = None  # not an operation this server offers yet

    def post(self, request, character_id: str | None = None):
        raise NotFound(
            "Characters are not available on this server.", code="characters_unavailable"
        )

    get = post


# --- Native API ---------------------------------------------------------------------------------


class GenerationDeriveApi(APIView):
    """The native way to remix, extend or edit a clip (the OpenAI shape's three endpoints in
    one): the same rules, the same lineage, a native generation in the answer."""

    parser_classes = PARSERS

    @extend_schema(
        request=GenerationDeriveInputSerializer,
        responses={201: GenerationBatchSerializer},
        tags=["generations"],
        operation_id="generations_derive",
    )
    @idempotent
    def post(self, request, job_id: str):
        data = GenerationDeriveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        kind = {"remix": JobKind.REMIX, "extend": JobKind.EXTEND, "edit": JobKind.EDIT}[
            values["kind"]
        ]
        if kind != JobKind.EXTEND and values.get("seconds") is not None:
            raise InvalidRequest(
                "seconds applies to extensions only.", code="invalid_seconds", param="seconds"
            )
        parent = _completed_parent(request, job_id)
        extra = 0
        if kind == JobKind.EXTEND:
            extra = services.validate_seconds(values.get("seconds"), allowed=EXTENSION_SECONDS)
        job = services.job_derive(
            user=request.user,
            parent=parent,
            kind=kind,
            prompt=values["prompt"],
            extra_seconds=extra,
        )
        body = {"object": "list", "data": GenerationSerializer([job], many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


class GenerationStitchApi(APIView):
    """Joins several clips into one, each a parent in the lineage (edge kind ``stitch``)."""

    parser_classes = PARSERS

    @extend_schema(
        request=GenerationStitchInputSerializer,
        responses={201: GenerationBatchSerializer},
        tags=["generations"],
        operation_id="generations_stitch",
    )
    @idempotent
    def post(self, request):
        data = GenerationStitchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        extra = 0
        if values.get("seconds") is not None:
            extra = services.validate_seconds(values["seconds"], allowed=EXTENSION_SECONDS)
        parents = [_completed_parent(request, ref) for ref in values["videos"]]
        job = services.job_stitch(
            user=request.user, parents=parents, prompt=values["prompt"], extra_seconds=extra
        )
        body = {"object": "list", "data": GenerationSerializer([job], many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


class GenerationsApi(APIView):
    parser_classes = PARSERS

    @extend_schema(
        request={
            "application/json": GenerationCreateInputSerializer,
            "multipart/form-data": GenerationCreateInputSerializer,
        },
        responses={201: GenerationBatchSerializer},
        tags=["generations"],
    )
    @idempotent
    def post(self, request):
        data = GenerationCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        storyboard = values.get("storyboard")
        seconds = values.get("seconds")
        if storyboard:
            total = sum(shot["seconds"] for shot in storyboard)
            seconds = seconds or round(total)
            if abs(total - seconds) > 0.5:
                raise InvalidRequest(
                    f"The storyboard lasts {total:g} s but seconds is {seconds}.",
                    code="storyboard_mismatch",
                    param="storyboard",
                )
        spec = services.job_spec_build(
            prompt=values["prompt"],
            model=values.get("model"),
            seconds=seconds,
            size=values.get("size"),
            native=True,
            allowed_seconds=None,
            seed=values.get("seed"),
            variants=values["variants"],
            priority=services.priority_for(user=request.user, name=values["priority"]),
            storyboard=[dict(shot) for shot in storyboard] if storyboard else None,
            input_reference=values.get("input_reference"),
        )
        jobs = services.job_create(user=request.user, spec=spec)
        body = {"object": "list", "data": GenerationSerializer(jobs, many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: GenerationSerializer(many=True)}, tags=["generations"])
    def get(self, request):
        rows, cursor = paginate_queryset(
            selectors.jobs_for_owner(user=request.user),
            ordering=("-id",),
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
        )
        return Response(list_body(GenerationSerializer(rows, many=True).data, cursor))


def _media_urls(request, job) -> dict | None:
    """Links to a finished clip's media, valid for ``MEDIA_URL_TTL`` seconds: presigned
    object-store URLs, or Montage's own signed links when the storage is the filesystem."""
    clip = getattr(job, "clip", None) if job.status == JobStatus.COMPLETED else None
    if clip is None or clip.removed_at is not None:
        return None
    return {
        variant: clip_direct_url(clip, variant, expires=settings.MEDIA_URL_TTL)
        or request.build_absolute_uri(f"/api/v1/media/{media_token(clip, variant)}")
        for variant in VARIANTS
    }


MEDIA_SALT = "montage.media"


def media_token(clip: Clip, variant: str) -> str:
    return signing.dumps({"c": str(clip.pk), "v": variant}, salt=MEDIA_SALT, compress=True)


class GenerationDetailApi(APIView):
    @extend_schema(responses={200: GenerationSerializer}, tags=["generations"])
    def get(self, request, job_id: str):
        job = selectors.job_get_for_owner(job_id=job_id, user=request.user)
        body = GenerationSerializer(job).data
        body["urls"] = _media_urls(request, job)
        return Response(body)

    @extend_schema(responses={200: DeletedSerializer}, tags=["generations"])
    def delete(self, request, job_id: str):
        job = selectors.job_get_for_owner(job_id=job_id, user=request.user)
        services.job_delete(job=job, actor=request.user)
        return Response({"id": job.public_id, "object": "video.deleted", "deleted": True})


class GenerationCancelApi(APIView):
    @extend_schema(request=None, responses={200: GenerationSerializer}, tags=["generations"])
    def post(self, request, job_id: str):
        job = selectors.job_get_for_owner(job_id=job_id, user=request.user)
        job = services.job_cancel(job=job, actor=request.user)
        return Response(GenerationSerializer(job).data)


class GenerationRetryApi(APIView):
    @extend_schema(request=None, responses={200: GenerationSerializer}, tags=["generations"])
    def post(self, request, job_id: str):
        job = selectors.job_get_for_owner(job_id=job_id, user=request.user)
        job = services.job_retry(job=job, actor=request.user)
        return Response(GenerationSerializer(job).data)


class GenerationContentApi(VideoContentApi):
    @extend_schema(
        parameters=[OpenApiParameter("variant", str, enum=list(VARIANTS))],
        responses={(200, "video/mp4"): OpenApiTypes.BINARY, 302: REDIRECT_TO_STORE},
        tags=["generations"],
        operation_id="generations_content",
    )
    def get(self, request, job_id: str):
        return super().get(request, job_id)


class SignedMediaApi(BinaryContentMixin, APIView):
    """A signed, expiring media URL: the token is the credential (for players that cannot send
    an Authorization header)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        responses={
            (200, "video/mp4"): OpenApiTypes.BINARY,
            302: REDIRECT_TO_STORE,
        },
        tags=["generations"],
    )
    def get(self, request, token: str):
        try:
            claims = signing.loads(token, salt=MEDIA_SALT, max_age=settings.MEDIA_URL_TTL)
        except signing.SignatureExpired as exc:
            raise Forbidden("This media link has expired.", code="link_expired") from exc
        except signing.BadSignature as exc:
            raise NotFound("No such media.", code="media_not_found") from exc
        clip = Clip.objects.filter(pk=claims.get("c"), removed_at__isnull=True).first()
        if clip is None or claims.get("v") not in VARIANTS:
            raise NotFound("No such media.", code="media_not_found")
        return _serve_clip_file(clip, claims["v"])
