from __future__ import annotations

from rest_framework import serializers

from moderation import policy
from moderation.models import (
    Appeal,
    AppealMessage,
    AuditEntry,
    Case,
    Category,
    HashBank,
    ProtectedTerm,
    Report,
    RightsHolder,
    Role,
)

# --- Input ------------------------------------------------------------------------------------


class ReportInputSerializer(serializers.Serializer):
    subject_type = serializers.ChoiceField(choices=policy.REPORTABLE)
    subject_id = serializers.CharField(max_length=100)
    reason = serializers.ChoiceField(choices=Category.choices)
    detail = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    time_start = serializers.FloatField(required=False, allow_null=True, min_value=0)
    time_end = serializers.FloatField(required=False, allow_null=True, min_value=0)


class AppealInputSerializer(serializers.Serializer):
    case = serializers.CharField(max_length=60)
    message = serializers.CharField(max_length=5000)


class MessageInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=5000)


class AppealResolveInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["upheld", "overturned"])
    reason = serializers.CharField(max_length=2000)


class DecisionInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=list(policy.DECISIONS))
    reason_code = serializers.ChoiceField(choices=list(policy.REASON_TEMPLATES))
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    strike = serializers.BooleanField(required=False, default=False)
    label = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3650)


class AssignInputSerializer(serializers.Serializer):
    assignee = serializers.CharField(
        max_length=40, help_text='A staff handle, "me", or "" to unassign.', allow_blank=True
    )


class EscalateInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class RestoreInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why it is restored (audited).")


class NoteInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=5000)


class TakeNextInputSerializer(serializers.Serializer):
    queue = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")


class RoleInputSerializer(serializers.Serializer):
    handle = serializers.CharField(max_length=40)
    role = serializers.ChoiceField(choices=Role.choices)


class HashBankInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=60)
    description = serializers.CharField(max_length=300, required=False, default="")
    threshold = serializers.IntegerField(min_value=0, max_value=64, required=False, default=31)
    action = serializers.ChoiceField(choices=["block", "hold"], required=False, default="block")
    category = serializers.ChoiceField(
        choices=Category.choices, required=False, default="hash_match"
    )


class HashBankUpdateInputSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    threshold = serializers.IntegerField(min_value=0, max_value=64, required=False)
    action = serializers.ChoiceField(choices=["block", "hold"], required=False)
    description = serializers.CharField(max_length=300, required=False)


class HashAddInputSerializer(serializers.Serializer):
    hashes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=1000
    )
    file = serializers.FileField(required=False)
    note = serializers.CharField(max_length=200, required=False, default="")


class RightsHolderInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    contact = serializers.EmailField(required=False, default="")


class ProtectedTermInputSerializer(serializers.Serializer):
    term = serializers.CharField(max_length=120)
    kind = serializers.ChoiceField(choices=ProtectedTerm.Kind.choices, default="character")


class ScreenInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000)


# --- Output -----------------------------------------------------------------------------------


class ReportSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "object",
            "subject_type",
            "subject_id",
            "reason",
            "detail",
            "time_start",
            "time_end",
            "status",
            "outcome",
            "created_at",
            "resolved_at",
        ]

    def get_object(self, obj) -> str:
        return "report"


class CaseSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    assigned_to = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "object",
            "queue",
            "subject_type",
            "subject_id",
            "category",
            "severity",
            "summary",
            "status",
            "reach",
            "reporter_trust",
            "report_count",
            "opened_at",
            "sla_due_at",
            "overdue",
            "assigned_to",
            "escalated_at",
            "decision",
            "resolved_at",
            "resolved_by",
        ]

    def get_object(self, obj) -> str:
        return "case"

    def get_assigned_to(self, obj) -> str | None:
        return obj.assigned_to.handle if obj.assigned_to_id else None

    def get_overdue(self, obj) -> bool:
        from django.utils import timezone

        return obj.is_open and obj.sla_due_at < timezone.now()


class AuditEntrySerializer(serializers.ModelSerializer):
    case = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "subject_type",
            "subject_id",
            "case",
            "reason_code",
            "reason",
            "detail",
        ]

    def get_case(self, obj) -> str | None:
        return f"case_{obj.case_id.hex}" if obj.case_id else None


class AppealMessageSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = AppealMessage
        fields = ["author", "from_staff", "body", "created_at"]

    def get_author(self, obj) -> str:
        # Staff speak as the team, not as named individuals.
        return "Trust & Safety" if obj.from_staff else f"@{obj.author.handle}"


class AppealSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    case = serializers.CharField(source="case.public_id")
    decision = serializers.CharField(source="case.decision")
    messages = AppealMessageSerializer(many=True, read_only=True)

    class Meta:
        model = Appeal
        fields = [
            "id",
            "object",
            "case",
            "decision",
            "status",
            "created_at",
            "resolved_at",
            "messages",
        ]

    def get_object(self, obj) -> str:
        return "appeal"


class HashBankSerializer(serializers.ModelSerializer):
    size = serializers.SerializerMethodField()

    class Meta:
        model = HashBank
        fields = ["name", "description", "enabled", "threshold", "action", "category", "size"]

    def get_size(self, obj) -> int:
        return getattr(obj, "size", None) or obj.hashes.count()


class ProtectedTermSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProtectedTerm
        fields = ["id", "term", "kind", "enabled", "created_at"]


class RightsHolderSerializer(serializers.ModelSerializer):
    terms = ProtectedTermSerializer(many=True, read_only=True)

    class Meta:
        model = RightsHolder
        fields = ["id", "name", "contact", "created_at", "terms"]
