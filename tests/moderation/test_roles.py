"""The role matrix: every staff endpoint and console page, for anonymous visitors, users,
moderators, senior moderators and admins. Refusals change nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from moderation import urls as moderation_urls
from moderation.console import urls as console_urls
from moderation.models import AuditEntry, Role
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.moderation.helpers import staff
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db

RANK = {"user": 0, Role.MODERATOR: 1, Role.SENIOR: 2, Role.ADMIN: 3}
C = "case_00000000000000000000000000000000"
A = "appeal_00000000000000000000000000000000"

# name -> (method, path, body, the least role allowed)
STAFF_ENDPOINTS = {
    "mod-cases": ("get", "/api/v1/moderation/cases", None, Role.MODERATOR),
    "mod-case-next": ("post", "/api/v1/moderation/cases/next", {}, Role.MODERATOR),
    "mod-case": ("get", f"/api/v1/moderation/cases/{C}", None, Role.MODERATOR),
    "mod-case-assign": ("post", f"/api/v1/moderation/cases/{C}/assign", {}, Role.MODERATOR),
    "mod-case-escalate": ("post", f"/api/v1/moderation/cases/{C}/escalate", {}, Role.MODERATOR),
    "mod-case-notes": ("post", f"/api/v1/moderation/cases/{C}/notes", {}, Role.MODERATOR),
    "mod-case-decide": ("post", f"/api/v1/moderation/cases/{C}/decide", {}, Role.MODERATOR),
    "mod-case-restore": ("post", f"/api/v1/moderation/cases/{C}/restore", {}, Role.SENIOR),
    "mod-screen": ("post", "/api/v1/moderation/screen", {}, Role.MODERATOR),
    "mod-appeals": ("get", "/api/v1/moderation/appeals", None, Role.SENIOR),
    "mod-appeal-messages": ("post", f"/api/v1/moderation/appeals/{A}/messages", {}, Role.SENIOR),
    "mod-appeal-resolve": ("post", f"/api/v1/moderation/appeals/{A}/resolve", {}, Role.SENIOR),
    "mod-holders": ("post", "/api/v1/moderation/rights-holders", {}, Role.SENIOR),
    "mod-holder-terms": ("post", "/api/v1/moderation/rights-holders/999/terms", {}, Role.SENIOR),
    "mod-audit": ("get", "/api/v1/moderation/audit", None, Role.SENIOR),
    "mod-banks": ("post", "/api/v1/moderation/hash-banks", {}, Role.ADMIN),
    "mod-bank": ("patch", "/api/v1/moderation/hash-banks/nope", {}, Role.ADMIN),
    "mod-bank-hashes": ("post", "/api/v1/moderation/hash-banks/nope/hashes", {}, Role.ADMIN),
    "mod-roles": ("post", "/api/v1/moderation/roles", {}, Role.ADMIN),
}
CONSOLE_PAGES = {
    "queue": ("get", "/staff/", Role.MODERATOR),
    "take": ("post", "/staff/take", Role.MODERATOR),
    "case": ("get", f"/staff/cases/{C}", Role.MODERATOR),
    "case-act": ("post", f"/staff/cases/{C}/act", Role.MODERATOR),
    "case-note": ("post", f"/staff/cases/{C}/notes", Role.MODERATOR),
    "appeals": ("get", "/staff/appeals", Role.SENIOR),
    "appeal": ("get", f"/staff/appeals/{A}", Role.SENIOR),
    "appeal-act": ("post", f"/staff/appeals/{A}/act", Role.SENIOR),
}


def test_the_matrix_lists_every_staff_endpoint_and_page():
    names = {p.name for p in moderation_urls.urlpatterns if p.name.startswith("mod-")}
    assert names == set(STAFF_ENDPOINTS)
    pages = {p.name for p in console_urls.urlpatterns} - {"login", "logout"}
    assert pages == set(CONSOLE_PAGES)


def _person(role: str):
    return UserFactory() if role == "user" else staff(role)


@pytest.mark.parametrize("role", ["user", Role.MODERATOR, Role.SENIOR, Role.ADMIN])
@pytest.mark.parametrize("name", sorted(STAFF_ENDPOINTS))
def test_staff_endpoint_role_matrix(name, role):
    method, path, body, minimum = STAFF_ENDPOINTS[name]
    api = client_for(_person(role))
    before = AuditEntry.objects.count()
    response = (
        getattr(api, method)(path, body, format="json")
        if body is not None
        else getattr(api, method)(path)
    )
    if RANK[role] < RANK[minimum]:
        assert_error(response, 403, code="role_required")
        assert AuditEntry.objects.count() == before
    else:
        # Allowed through: the empty body or unknown id is what it complains about now.
        assert response.status_code in (200, 400, 404), (name, role, response.content)


@pytest.mark.parametrize("name", sorted(STAFF_ENDPOINTS))
def test_staff_endpoints_need_authentication(name, anon_client):
    method, path, body, _ = STAFF_ENDPOINTS[name]
    response = getattr(anon_client, method)(path, body or {}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize("role", ["anon", "user", Role.MODERATOR, Role.SENIOR, Role.ADMIN])
@pytest.mark.parametrize("name", sorted(CONSOLE_PAGES))
def test_console_role_matrix(name, role):
    method, path, minimum = CONSOLE_PAGES[name]
    client = Client()
    if role != "anon":
        client.force_login(_person(role))
    response = getattr(client, method)(path)
    if role == "anon":
        assert response.status_code == 302 and response["Location"].startswith("/staff/login")
    elif RANK[role] < RANK[minimum]:
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 302, 404), (name, role, response.status_code)


def test_console_forms_need_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff())
    assert client.post("/staff/take").status_code == 403


def test_granting_a_role_is_audited_and_takes_effect():
    admin = client_for(staff(Role.ADMIN))
    target = UserFactory()
    response = admin.post(
        "/api/v1/moderation/roles", {"handle": target.handle, "role": "moderator"}, format="json"
    )
    assert response.json() == {"handle": target.handle, "role": "moderator"}
    assert client_for(target).get("/api/v1/moderation/cases").status_code == 200
    assert AuditEntry.objects.filter(action="role_granted").count() == 1
