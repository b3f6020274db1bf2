"""Reports: what may be reported and how; rate limits; the reporter sees their reports'
status and is notified of the outcome."""

from __future__ import annotations

import pytest

from accounts.models import Notification
from moderation.models import Case, Report
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.moderation.helpers import make_clip, staff
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


def _report(api, **body):
    return api.post("/api/v1/reports", {"reason": "hate", **body}, format="json")


def test_a_report_on_a_visible_clip_opens_a_case_with_the_time_range():
    clip = make_clip(UserFactory())
    api = client_for(UserFactory())
    response = _report(
        api,
        subject_type="clip",
        subject_id=clip.job.public_id,
        detail="at 2s",
        time_start=1.5,
        time_end=2.5,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("report_") and body["status"] == "open"
    assert (body["time_start"], body["time_end"]) == (1.5, 2.5)
    case = Case.objects.get()
    assert (case.queue, case.subject_id, case.category, case.severity) == (
        "reports",
        clip.job.public_id,
        "hate",
        3,
    )
    assert case.report_count == 1 and case.reporter_trust == 0.5


def test_many_reporters_one_case_and_a_duplicate_is_409():
    clip = make_clip(UserFactory())
    first, second = client_for(UserFactory()), client_for(UserFactory())
    assert _report(first, subject_type="clip", subject_id=clip.job.public_id).status_code == 201
    assert _report(second, subject_type="clip", subject_id=clip.job.public_id).status_code == 201
    again = _report(first, subject_type="clip", subject_id=clip.job.public_id)
    assert_error(again, 409, code="already_reported")
    assert Case.objects.get().report_count == 2 and Report.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (
            {"subject_type": "clip", "subject_id": "video_nope"},
            404,
            "subject_not_found",
            "subject_id",
        ),
        ({"subject_type": "planet", "subject_id": "x"}, 400, "invalid_choice", "subject_type"),
        (
            # Comments are a subject type the feed app registers; this one does not exist.
            {"subject_type": "comment", "subject_id": "c_1"},
            404,
            "subject_not_found",
            "subject_id",
        ),
        (
            {"subject_type": "user", "subject_id": "nobody_here"},
            404,
            "subject_not_found",
            "subject_id",
        ),
    ],
)
def test_bad_reports_are_refused_and_write_nothing(body, status, code, param):
    response = _report(client_for(UserFactory()), **body)
    assert_error(response, status, code=code, param=param)
    assert not Report.objects.exists() and not Case.objects.exists()


def test_a_draft_cannot_be_reported_by_someone_who_cannot_see_it():
    draft = make_clip(UserFactory(), audience="only_me")
    response = _report(
        client_for(UserFactory()), subject_type="clip", subject_id=draft.job.public_id
    )
    assert_error(response, 404, code="subject_not_found", param="subject_id")


def test_time_range_outside_the_clip_and_self_reports_are_refused():
    owner = UserFactory()
    clip = make_clip(owner)
    api = client_for(UserFactory())
    bad = _report(api, subject_type="clip", subject_id=clip.job.public_id, time_start=3, time_end=9)
    assert_error(bad, 400, code="invalid_time_range", param="time_start")
    own = _report(client_for(owner), subject_type="clip", subject_id=clip.job.public_id)
    assert_error(own, 400, code="self_report", param="subject_id")
    assert not Report.objects.exists()


def test_reporting_a_profile_by_handle():
    target = UserFactory()
    response = _report(
        client_for(UserFactory()),
        subject_type="user",
        subject_id=f"@{target.handle}",
        reason="harassment",
    )
    assert response.status_code == 201
    assert response.json()["subject_id"] == str(target.pk)


def test_reports_are_rate_limited_per_user(settings):
    settings.MONTAGE_THROTTLE_RATES = {**settings.MONTAGE_THROTTLE_RATES, "report": "2/hour"}
    api = client_for(UserFactory())
    clips = [make_clip(UserFactory()) for _ in range(3)]
    for clip in clips[:2]:
        assert _report(api, subject_type="clip", subject_id=clip.job.public_id).status_code == 201
    limited = _report(api, subject_type="clip", subject_id=clips[2].job.public_id)
    assert_error(limited, 429, code="rate_limit_exceeded")
    assert int(limited["Retry-After"]) > 0
    assert Report.objects.count() == 2
    # Reading one's reports is not limited by the report rate.
    assert api.get("/api/v1/reports").status_code == 200


def test_the_reporter_is_told_the_outcome_and_sees_the_status():
    clip = make_clip(UserFactory())
    api = client_for(UserFactory())
    report_id = _report(api, subject_type="clip", subject_id=clip.job.public_id).json()["id"]
    moderator = client_for(staff())
    case_id = moderator.get("/api/v1/moderation/cases").json()["data"][0]["id"]
    decided = moderator.post(
        f"/api/v1/moderation/cases/{case_id}/decide",
        {"decision": "remove", "reason_code": "hate_speech", "reason": "slur at 0:02"},
        format="json",
    )
    assert decided.status_code == 200, decided.content
    mine = api.get("/api/v1/reports").json()["data"]
    assert [(r["id"], r["status"]) for r in mine] == [(report_id, "actioned")]
    assert mine[0]["outcome"] == "It attacks people for who they are. slur at 0:02"
    note = Notification.objects.get(user=api.user, kind="report.resolved")
    assert note.data["status"] == "actioned" and note.data["report"] == report_id
    assert api.get(f"/api/v1/reports/{report_id}").json()["status"] == "actioned"
    # Somebody else's report is a 404, like a missing one.
    assert_error(
        client_for(UserFactory()).get(f"/api/v1/reports/{report_id}"),
        404,
        code="report_not_found",
        param="report_id",
    )


def test_a_dismissed_report_says_so():
    clip = make_clip(UserFactory())
    api = client_for(UserFactory())
    _report(api, subject_type="clip", subject_id=clip.job.public_id)
    moderator = client_for(staff())
    case_id = moderator.get("/api/v1/moderation/cases").json()["data"][0]["id"]
    moderator.post(
        f"/api/v1/moderation/cases/{case_id}/decide",
        {"decision": "approve", "reason_code": "no_violation"},
        format="json",
    )
    assert api.get("/api/v1/reports").json()["data"][0]["status"] == "dismissed"
    assert Notification.objects.get(user=api.user).data["status"] == "dismissed"


def test_unauthenticated_reports_are_401(anon_client):
    response = anon_client.post("/api/v1/reports", {}, format="json")
    assert response.status_code == 401
