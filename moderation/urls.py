from django.urls import path

from moderation import apis

# Mounted at /api/v1/.
urlpatterns = [
    path("reports", apis.ReportsApi.as_view(), name="reports"),
    path("reports/<str:report_id>", apis.ReportDetailApi.as_view(), name="report-detail"),
    path("appeals", apis.AppealsApi.as_view(), name="appeals"),
    path("appeals/<str:appeal_id>", apis.AppealDetailApi.as_view(), name="appeal-detail"),
    path(
        "appeals/<str:appeal_id>/messages",
        apis.AppealMessagesApi.as_view(),
        name="appeal-messages",
    ),
    # Staff.
    path("moderation/cases", apis.CasesApi.as_view(), name="mod-cases"),
    path("moderation/cases/next", apis.CaseTakeNextApi.as_view(), name="mod-case-next"),
    path("moderation/cases/<str:case_id>", apis.CaseDetailApi.as_view(), name="mod-case"),
    path(
        "moderation/cases/<str:case_id>/assign",
        apis.CaseAssignApi.as_view(),
        name="mod-case-assign",
    ),
    path(
        "moderation/cases/<str:case_id>/escalate",
        apis.CaseEscalateApi.as_view(),
        name="mod-case-escalate",
    ),
    path(
        "moderation/cases/<str:case_id>/notes", apis.CaseNotesApi.as_view(), name="mod-case-notes"
    ),
    path(
        "moderation/cases/<str:case_id>/decide",
        apis.CaseDecideApi.as_view(),
        name="mod-case-decide",
    ),
    path(
        "moderation/cases/<str:case_id>/restore",
        apis.CaseRestoreApi.as_view(),
        name="mod-case-restore",
    ),
    path("moderation/appeals", apis.StaffAppealsApi.as_view(), name="mod-appeals"),
    path(
        "moderation/appeals/<str:appeal_id>/messages",
        apis.StaffAppealMessagesApi.as_view(),
        name="mod-appeal-messages",
    ),
    path(
        "moderation/appeals/<str:appeal_id>/resolve",
        apis.StaffAppealResolveApi.as_view(),
        name="mod-appeal-resolve",
    ),
    path("moderation/hash-banks", apis.HashBanksApi.as_view(), name="mod-banks"),
    path("moderation/hash-banks/<slug:name>", apis.HashBankDetailApi.as_view(), name="mod-bank"),
    path(
        "moderation/hash-banks/<slug:name>/hashes",
        apis.HashBankHashesApi.as_view(),
        name="mod-bank-hashes",
    ),
    path("moderation/rights-holders", apis.RightsHoldersApi.as_view(), name="mod-holders"),
    path(
        "moderation/rights-holders/<int:holder_id>/terms",
        apis.ProtectedTermsApi.as_view(),
        name="mod-holder-terms",
    ),
    path("moderation/roles", apis.RolesApi.as_view(), name="mod-roles"),
    path("moderation/audit", apis.AuditApi.as_view(), name="mod-audit"),
    path("moderation/screen", apis.ScreenApi.as_view(), name="mod-screen"),
]
