"""HTTP layer for moderation. Users: reports and appeals. Staff (role-checked on every
endpoint): cases, decisions, appeals, hash banks, the rights-holder registry, roles, audit."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from core.errors import InvalidRequest, NotFound
from core.idempotency import idempotent
from core.pagination import list_body, paginate_queryset, parse_limit
from core.throttling import _WindowThrottle
from moderation import selectors, services
from moderation.models import HashBank, RightsHolder, Role
from moderation.serializers import (
    AppealInputSerializer,
    AppealResolveInputSerializer,
    AppealSerializer,
    AssignInputSerializer,
    AuditEntrySerializer,
    CaseSerializer,
    DecisionInputSerializer,
    EscalateInputSerializer,
    HashAddInputSerializer,
    HashBankInputSerializer,
    HashBankSerializer,
    HashBankUpdateInputSerializer,
    MessageInputSerializer,
    NoteInputSerializer,
    ProtectedTermInputSerializer,
    ProtectedTermSerializer,
    ReportInputSerializer,
    ReportSerializer,
    RestoreInputSerializer,
    RightsHolderInputSerializer,
    RightsHolderSerializer,
    RoleInputSerializer,
    ScreenInputSerializer,
    TakeNextInputSerializer,
)


class ReportRateThrottle(_WindowThrottle):
    """Reports per user (MONTAGE_THROTTLE_RATES["report"])."""

    scope = "report"

    def ident(self, request):
        user = getattr(request, "user", None)
        return str(user.pk) if user is not None and user.is_authenticated else None


def _page(request, queryset, serializer, ordering=("-id",)):
    rows, cursor = paginate_queryset(
        queryset,
        ordering=ordering,
        cursor=request.query_params.get("cursor"),
        limit=parse_limit(request.query_params.get("limit")),
    )
    return Response(list_body(serializer(rows, many=True).data, cursor))


# --- Users ------------------------------------------------------------------------------------


class ReportsApi(APIView):
    def get_throttles(self):
        throttles = super().get_throttles()
        return [*throttles, ReportRateThrottle()] if self.request.method == "POST" else throttles

    @extend_schema(
        request=ReportInputSerializer, responses={201: ReportSerializer}, tags=["moderation"]
    )
    @idempotent
    def post(self, request):
        data = ReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.report_create(reporter=request.user, **data.validated_data)
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ReportSerializer(many=True)}, tags=["moderation"])
    def get(self, request):
        return _page(request, selectors.reports_of(user=request.user), ReportSerializer)


class ReportDetailApi(APIView):
    @extend_schema(responses={200: ReportSerializer}, tags=["moderation"])
    def get(self, request, report_id: str):
        report = selectors.report_get_for_reporter(report_id=report_id, user=request.user)
        return Response(ReportSerializer(report).data)


class AppealsApi(APIView):
    @extend_schema(
        request=AppealInputSerializer, responses={201: AppealSerializer}, tags=["moderation"]
    )
    def post(self, request):
        data = AppealInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            case = selectors.case_get(case_id=data.validated_data["case"], user=None)
        except NotFound as exc:
            raise NotFound("No such decision.", code="case_not_found", param="case") from exc
        appeal = services.appeal_open(
            user=request.user, case=case, message=data.validated_data["message"]
        )
        return Response(AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: AppealSerializer(many=True)}, tags=["moderation"])
    def get(self, request):
        rows = selectors.appeals_of(user=request.user).prefetch_related("messages__author")
        return _page(request, rows, AppealSerializer)


class AppealDetailApi(APIView):
    @extend_schema(responses={200: AppealSerializer}, tags=["moderation"])
    def get(self, request, appeal_id: str):
        appeal = selectors.appeal_get_for_user(appeal_id=appeal_id, user=request.user)
        return Response(AppealSerializer(appeal).data)


class AppealMessagesApi(APIView):
    """The appellant's side of the conversation (staff answer through the staff endpoint)."""

    @extend_schema(
        request=MessageInputSerializer, responses={201: AppealSerializer}, tags=["moderation"]
    )
    def post(self, request, appeal_id: str):
        appeal = selectors.appeal_get_for_user(appeal_id=appeal_id, user=request.user)
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.appeal_message_add(
            appeal=appeal, author=request.user, body=data.validated_data["body"]
        )
        return Response(AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)


# --- Staff ------------------------------------------------------------------------------------


class StaffApi(APIView):
    """Every staff endpoint: refused (403) to anyone below ``minimum_role``."""

    minimum_role = Role.MODERATOR

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        services.role_require(request.user, self.minimum_role)


def _case(request, case_id: str):
    return selectors.case_get(case_id=case_id, user=request.user)


class CasesApi(StaffApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("queue", str),
            OpenApiParameter("category", str),
            OpenApiParameter("assigned", str, enum=["me", "none"]),
            OpenApiParameter("overdue", bool),
        ],
        responses={200: CaseSerializer(many=True)},
        tags=["moderation staff"],
    )
    def get(self, request):
        params = request.query_params
        rows = selectors.case_queue(
            user=request.user,
            queue=params.get("queue") or None,
            category=params.get("category") or None,
            assigned=params.get("assigned") or None,
            overdue=params.get("overdue") in ("1", "true"),
        )
        return _page(request, rows, CaseSerializer, ordering=selectors.QUEUE_ORDER)


class CaseDetailApi(StaffApi):
    @extend_schema(responses={200: CaseSerializer}, tags=["moderation staff"])
    def get(self, request, case_id: str):
        case = _case(request, case_id)
        history = selectors.case_history(case)
        body = CaseSerializer(case).data
        body["reports"] = ReportSerializer(history["reports"], many=True).data
        body["notes"] = [
            {"author": f"@{n.author.handle}", "body": n.body, "created_at": n.created_at}
            for n in history["notes"]
        ]
        body["audit"] = AuditEntrySerializer(history["audit"], many=True).data
        body["payload"] = case.payload
        body["subject"] = selectors.case_subject_details(case)
        return Response(body)


class CaseTakeNextApi(StaffApi):
    @extend_schema(
        request=TakeNextInputSerializer, responses={200: CaseSerializer}, tags=["moderation staff"]
    )
    def post(self, request):
        data = TakeNextInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_take_next(
            user=request.user, queue=data.validated_data["queue"] or None
        )
        if case is None:
            raise NotFound("The queue is empty.", code="queue_empty")
        return Response(CaseSerializer(case).data)


class CaseAssignApi(StaffApi):
    @extend_schema(
        request=AssignInputSerializer, responses={200: CaseSerializer}, tags=["moderation staff"]
    )
    def post(self, request, case_id: str):
        case = _case(request, case_id)
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        handle = data.validated_data["assignee"]
        if handle == "me":
            assignee = request.user
        elif handle:
            assignee = User.objects.filter(handle=User.normalize_handle(handle)).first()
            if assignee is None:
                raise InvalidRequest("No such staff member.", code="not_staff", param="assignee")
        else:
            assignee = None
        case = services.case_assign(case=case, assignee=assignee, actor=request.user)
        return Response(CaseSerializer(case).data)


class CaseEscalateApi(StaffApi):
    @extend_schema(
        request=EscalateInputSerializer, responses={200: CaseSerializer}, tags=["moderation staff"]
    )
    def post(self, request, case_id: str):
        case = _case(request, case_id)
        data = EscalateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_escalate(case=case, actor=request.user, **data.validated_data)
        return Response(CaseSerializer(case).data)


class CaseNotesApi(StaffApi):
    @extend_schema(request=NoteInputSerializer, responses={201: None}, tags=["moderation staff"])
    def post(self, request, case_id: str):
        case = _case(request, case_id)
        data = NoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.case_note_add(case=case, author=request.user, **data.validated_data)
        return Response(
            {"author": f"@{request.user.handle}", "body": note.body, "created_at": note.created_at},
            status=status.HTTP_201_CREATED,
        )


class CaseDecideApi(StaffApi):
    @extend_schema(
        request=DecisionInputSerializer, responses={200: CaseSerializer}, tags=["moderation staff"]
    )
    def post(self, request, case_id: str):
        case = _case(request, case_id)
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        case = services.case_decide(
            case=case,
            actor=request.user,
            decision=values.pop("decision"),
            reason_code=values.pop("reason_code"),
            reason=values.pop("reason"),
            options=values,
        )
        return Response(CaseSerializer(case).data)


class CaseRestoreApi(StaffApi):
    """Restores what the case's decision removed (a clip, or a comment with its thread)."""

    minimum_role = Role.SENIOR

    @extend_schema(
        request=RestoreInputSerializer, responses={200: CaseSerializer}, tags=["moderation staff"]
    )
    def post(self, request, case_id: str):
        case = _case(request, case_id)
        data = RestoreInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_restore(
            case=case, actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(CaseSerializer(case).data)


class StaffAppealsApi(StaffApi):
    minimum_role = Role.SENIOR

    @extend_schema(responses={200: AppealSerializer(many=True)}, tags=["moderation staff"])
    def get(self, request):
        rows = selectors.appeal_queue().prefetch_related("messages__author")
        return _page(request, rows, AppealSerializer, ordering=("created_at", "id"))


class StaffAppealMessagesApi(StaffApi):
    minimum_role = Role.SENIOR

    @extend_schema(
        request=MessageInputSerializer, responses={201: AppealSerializer}, tags=["moderation staff"]
    )
    def post(self, request, appeal_id: str):
        appeal = selectors.appeal_get_for_user(appeal_id=appeal_id, user=request.user, staff=True)
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.appeal_message_add(
            appeal=appeal, author=request.user, body=data.validated_data["body"]
        )
        return Response(AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)


class StaffAppealResolveApi(StaffApi):
    minimum_role = Role.SENIOR

    @extend_schema(
        request=AppealResolveInputSerializer,
        responses={200: AppealSerializer},
        tags=["moderation staff"],
    )
    def post(self, request, appeal_id: str):
        appeal = selectors.appeal_get_for_user(appeal_id=appeal_id, user=request.user, staff=True)
        data = AppealResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = services.appeal_resolve(appeal=appeal, actor=request.user, **data.validated_data)
        return Response(AppealSerializer(appeal).data)


class HashBanksApi(StaffApi):
    minimum_role = Role.ADMIN

    @extend_schema(responses={200: HashBankSerializer(many=True)}, tags=["moderation staff"])
    def get(self, request):
        from django.db.models import Count

        rows = HashBank.objects.annotate(size=Count("hashes"))
        return _page(request, rows, HashBankSerializer, ordering=("name", "id"))

    @extend_schema(
        request=HashBankInputSerializer,
        responses={201: HashBankSerializer},
        tags=["moderation staff"],
    )
    def post(self, request):
        data = HashBankInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bank = services.hash_bank_create(actor=request.user, **data.validated_data)
        return Response(HashBankSerializer(bank).data, status=status.HTTP_201_CREATED)


def _bank(name: str) -> HashBank:
    bank = HashBank.objects.filter(name=name).first()
    if bank is None:
        raise NotFound(f"No hash bank {name!r}.", code="bank_not_found", param="name")
    return bank


class HashBankDetailApi(StaffApi):
    minimum_role = Role.ADMIN

    @extend_schema(
        request=HashBankUpdateInputSerializer,
        responses={200: HashBankSerializer},
        tags=["moderation staff"],
    )
    def patch(self, request, name: str):
        bank = _bank(name)
        data = HashBankUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bank = services.hash_bank_update(bank=bank, actor=request.user, **data.validated_data)
        return Response(HashBankSerializer(bank).data)


class HashBankHashesApi(StaffApi):
    """Add banned hashes by value (64 hex characters each) or by file (an image: one hash; a
    video: one per second)."""

    minimum_role = Role.ADMIN
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        request=HashAddInputSerializer,
        responses={201: HashBankSerializer},
        tags=["moderation staff"],
    )
    def post(self, request, name: str):
        bank = _bank(name)
        data = HashAddInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        digests = [services.parse_pdq_hex(h) for h in values.get("hashes") or []]
        if values.get("file") is not None:
            digests += services.hashes_from_file(values["file"])
        if not digests:
            raise InvalidRequest("Send hashes or a file.", code="nothing_to_add", param="hashes")
        services.hash_bank_add(bank=bank, digests=digests, actor=request.user, note=values["note"])
        return Response(HashBankSerializer(bank).data, status=status.HTTP_201_CREATED)


class RightsHoldersApi(StaffApi):
    minimum_role = Role.SENIOR

    @extend_schema(responses={200: RightsHolderSerializer(many=True)}, tags=["moderation staff"])
    def get(self, request):
        rows = RightsHolder.objects.prefetch_related("terms")
        return _page(request, rows, RightsHolderSerializer, ordering=("name", "id"))

    @extend_schema(
        request=RightsHolderInputSerializer,
        responses={201: RightsHolderSerializer},
        tags=["moderation staff"],
    )
    def post(self, request):
        data = RightsHolderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        holder = services.rights_holder_register(actor=request.user, **data.validated_data)
        return Response(RightsHolderSerializer(holder).data, status=status.HTTP_201_CREATED)


class ProtectedTermsApi(StaffApi):
    minimum_role = Role.SENIOR

    @extend_schema(
        request=ProtectedTermInputSerializer,
        responses={201: ProtectedTermSerializer},
        tags=["moderation staff"],
    )
    def post(self, request, holder_id: int):
        holder = get_object_or_404(RightsHolder, pk=holder_id)
        data = ProtectedTermInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        term = services.protected_term_add(holder=holder, actor=request.user, **data.validated_data)
        return Response(ProtectedTermSerializer(term).data, status=status.HTTP_201_CREATED)


class RolesApi(StaffApi):
    minimum_role = Role.ADMIN

    @extend_schema(request=RoleInputSerializer, responses={200: None}, tags=["moderation staff"])
    def post(self, request):
        data = RoleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = User.objects.filter(
            handle=User.normalize_handle(data.validated_data["handle"])
        ).first()
        if user is None:
            raise NotFound("No such user.", code="user_not_found", param="handle")
        row = services.role_grant(user=user, role=data.validated_data["role"], actor=request.user)
        return Response({"handle": user.handle, "role": row.role})


class AuditApi(StaffApi):
    minimum_role = Role.SENIOR

    @extend_schema(
        parameters=[OpenApiParameter("subject_type", str), OpenApiParameter("subject_id", str)],
        responses={200: AuditEntrySerializer(many=True)},
        tags=["moderation staff"],
    )
    def get(self, request):
        rows = selectors.audit_for(
            subject_type=request.query_params.get("subject_type"),
            subject_id=request.query_params.get("subject_id"),
        )
        return _page(request, rows, AuditEntrySerializer)


class ScreenApi(StaffApi):
    """Runs the input classifier on a text and explains the result (for staff tuning policy)."""

    @extend_schema(request=ScreenInputSerializer, responses={200: None}, tags=["moderation staff"])
    def post(self, request):
        from moderation.screening import screen_texts

        data = ScreenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = screen_texts(texts=[data.validated_data["text"]])
        return Response(
            {
                "flagged": result.flagged,
                "categories": result.categories,
                "hits": result.explain(),
                "scores": result.scores,
                "normalized": result.normalized,
            }
        )
