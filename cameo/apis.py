"""Thin HTTP layer for cameos: parse, call one service or selector, serialize."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_get_for_viewer
from cameo import selectors, services
from cameo.serializers import (
    AppearanceSerializer,
    CameoOwnerSerializer,
    CameoSerializer,
    ChallengeSerializer,
    CharacterInputSerializer,
    CharacterSerializer,
    GrantSerializer,
    HandleInputSerializer,
    LedgerEntrySerializer,
    PolicyInputSerializer,
    RecordingInputSerializer,
    SettingsInputSerializer,
)
from core.idempotency import idempotent
from core.pagination import list_body, paginate_queryset, parse_limit

PARSERS = [JSONParser, MultiPartParser, FormParser]
TAGS = ["cameos"]


def _page(request, queryset, serializer, *, ordering=("-id",)) -> Response:
    rows, cursor = paginate_queryset(
        queryset,
        ordering=ordering,
        cursor=request.query_params.get("cursor"),
        limit=parse_limit(request.query_params.get("limit")),
    )
    data = serializer(rows, many=True, context={"request": request}).data
    return Response(list_body(data, cursor))


def _cameo_body(cameo, user) -> dict:
    if cameo.owner_id == user.pk:
        return CameoOwnerSerializer(cameo).data
    return CameoSerializer(cameo).data


def _policy(request) -> str | None:
    data = PolicyInputSerializer(data=request.data or request.query_params)
    data.is_valid(raise_exception=True)
    return data.validated_data.get("policy")


def _character_create(request):
    data = CharacterInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    return services.character_create(
        owner=request.user,
        name=values["name"],
        upload=values["video"],
        rights_attested=values["rights_attested"],
        handle=values.get("handle"),
    )


class CameosApi(APIView):
    @extend_schema(responses={200: CameoOwnerSerializer(many=True)}, tags=TAGS)
    def get(self, request):
        return _page(request, selectors.cameos_of(owner=request.user), CameoOwnerSerializer)


class ChallengesApi(APIView):
    @extend_schema(request=None, responses={201: ChallengeSerializer}, tags=TAGS)
    def post(self, request):
        challenge = services.challenge_create(user=request.user)
        return Response(ChallengeSerializer(challenge).data, status=status.HTTP_201_CREATED)


class ChallengeRecordingApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": RecordingInputSerializer},
        responses={202: CameoOwnerSerializer},
        tags=TAGS,
    )
    def post(self, request, challenge_id: str):
        challenge = selectors.challenge_get_for_user(challenge_id=challenge_id, user=request.user)
        data = RecordingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cameo = services.recording_submit(
            user=request.user, challenge=challenge, upload=data.validated_data["recording"]
        )
        return Response(CameoOwnerSerializer(cameo).data, status=status.HTTP_202_ACCEPTED)


class CharactersApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": CharacterInputSerializer},
        responses={201: CameoOwnerSerializer},
        tags=TAGS,
    )
    @idempotent
    def post(self, request):
        cameo = _character_create(request)
        return Response(CameoOwnerSerializer(cameo).data, status=status.HTTP_201_CREATED)


class AccessRequestsApi(APIView):
    @extend_schema(request=HandleInputSerializer, responses={202: None}, tags=TAGS)
    def post(self, request):
        data = HandleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.access_request(requester=request.user, handle=data.validated_data["handle"])
        # The same answer whether or not such a cameo exists.
        return Response({"object": "cameo.access_request", "status": "sent"}, status=202)


class CameoByHandleApi(APIView):
    @extend_schema(responses={200: CameoSerializer}, tags=TAGS)
    def get(self, request, handle: str):
        cameo = selectors.cameo_get_by_handle_for_viewer(handle=handle, user=request.user)
        return Response(_cameo_body(cameo, request.user))


class CameoDetailApi(APIView):
    @extend_schema(responses={200: CameoSerializer}, tags=TAGS)
    def get(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_viewer(cameo_id=cameo_id, user=request.user)
        return Response(_cameo_body(cameo, request.user))

    @extend_schema(
        request=SettingsInputSerializer, responses={200: CameoOwnerSerializer}, tags=TAGS
    )
    def patch(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        data = SettingsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cameo = services.cameo_settings_update(
            cameo=cameo, actor=request.user, **data.validated_data
        )
        return Response(CameoOwnerSerializer(cameo).data)

    @extend_schema(request=PolicyInputSerializer, responses={200: CameoOwnerSerializer}, tags=TAGS)
    def delete(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        cameo = services.cameo_delete(cameo=cameo, actor=request.user, policy=_policy(request))
        return Response(CameoOwnerSerializer(cameo).data)


class CameoRevokeApi(APIView):
    @extend_schema(request=PolicyInputSerializer, responses={200: CameoOwnerSerializer}, tags=TAGS)
    def post(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        cameo = services.cameo_revoke(cameo=cameo, actor=request.user, policy=_policy(request))
        return Response(CameoOwnerSerializer(cameo).data)


class GrantsApi(APIView):
    @extend_schema(responses={200: GrantSerializer(many=True)}, tags=TAGS)
    def get(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        return _page(request, selectors.grants_of(cameo=cameo), GrantSerializer)

    @extend_schema(request=HandleInputSerializer, responses={201: GrantSerializer}, tags=TAGS)
    def post(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        data = HandleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grantee = user_get_for_viewer(handle=data.validated_data["handle"], viewer=request.user)
        grant = services.grant_create(cameo=cameo, grantee=grantee, actor=request.user)
        return Response(GrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class GrantDetailApi(APIView):
    @extend_schema(request=PolicyInputSerializer, responses={200: GrantSerializer}, tags=TAGS)
    def delete(self, request, cameo_id: str, grant_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        grant = selectors.grant_get_for_owner(cameo=cameo, grant_id=grant_id)
        grant = services.grant_revoke(grant=grant, actor=request.user, policy=_policy(request))
        return Response(GrantSerializer(grant).data)


class GrantDecisionApi(APIView):
    accept = True

    @extend_schema(request=None, responses={200: GrantSerializer}, tags=TAGS)
    def post(self, request, cameo_id: str, grant_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        grant = selectors.grant_get_for_owner(cameo=cameo, grant_id=grant_id)
        grant = services.grant_decide(grant=grant, actor=request.user, accept=self.accept)
        return Response(GrantSerializer(grant).data)


class GrantDeclineApi(GrantDecisionApi):
    accept = False


class AppearancesApi(APIView):
    @extend_schema(responses={200: AppearanceSerializer(many=True)}, tags=TAGS)
    def get(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        return _page(request, selectors.appearances_of(cameo=cameo), AppearanceSerializer)


class AppearanceDetailApi(APIView):
    @extend_schema(request=None, responses={200: AppearanceSerializer}, tags=TAGS)
    def delete(self, request, cameo_id: str, appearance_id: str):
        cameo = selectors.cameo_get_for_owner(cameo_id=cameo_id, user=request.user)
        appearance = selectors.appearance_get_for_owner(cameo=cameo, appearance_id=appearance_id)
        services.appearance_remove(appearance=appearance, actor=request.user)
        appearance = selectors.appearance_get_for_owner(cameo=cameo, appearance_id=appearance_id)
        return Response(AppearanceSerializer(appearance, context={"request": request}).data)


class LedgerApi(APIView):
    @extend_schema(responses={200: LedgerEntrySerializer(many=True)}, tags=TAGS)
    def get(self, request, cameo_id: str):
        cameo = selectors.cameo_get_for_owner(
            cameo_id=cameo_id, user=request.user, include_deleted=True
        )
        return _page(
            request, selectors.ledger_of(cameo=cameo), LedgerEntrySerializer, ordering=("seq",)
        )


# --- OpenAI Videos API: characters ----------------------------------------------------------------


class OpenAICharactersApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": CharacterInputSerializer},
        responses={200: CharacterSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_create_character",
    )
    @idempotent
    def post(self, request):
        return Response(CharacterSerializer(_character_create(request)).data)


class OpenAICharacterDetailApi(APIView):
    @extend_schema(
        responses={200: CharacterSerializer},
        tags=["videos (OpenAI)"],
        operation_id="videos_get_character",
    )
    def get(self, request, character_id: str):
        cameo = selectors.character_get_for_viewer(character_id=character_id, user=request.user)
        return Response(CharacterSerializer(cameo).data)
