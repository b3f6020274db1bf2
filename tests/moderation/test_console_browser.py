"""The staff console in a real headless Chromium (Playwright driving Debian's ``chromium``):
log in as staff, take the reported case from the queue, remove the clip, and see its media
link die, the post leave a follower's feed and every viewer's list, and the reporter told the
outcome.

Screenshots of each step are written to $MODERATION_SCREENSHOTS (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import Notification
from accounts.services import user_follow
from feed.services import post_publish
from generation.models import Clip
from generation.selectors import clips_visible_q
from moderation.models import Case, Report
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.moderation.helpers import make_clip, staff

PASSWORD = "correct horse battery staple"


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_path() is None,
        reason="no Chromium found: install Debian's chromium (apt-get install -y chromium) or "
        "set PLAYWRIGHT_CHROMIUM_EXECUTABLE",
    ),
]


@pytest.fixture
def browser_page(monkeypatch):
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are
    # still synchronous and sequential.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


@pytest.mark.django_db(transaction=True)
def test_staff_take_a_case_remove_the_clip_and_the_reporter_is_told(
    live_server, browser_page, tmp_path
):
    shots = Path(os.environ.get("MODERATION_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = browser_page
    creator = UserFactory(handle="creator1")
    clip = make_clip(
        creator,
        prompt="a dancer on a rooftop at night",
        published_at=timezone.now(),
        annotations={
            "cameos": [
                {
                    "handle": "alice",
                    "cameo_id": "cameo_ab12",
                    "kind": "person",
                    "restrictions": ["politics"],
                    "ledger_entry": "9f" * 32,
                }
            ],
            "consent": [{"ledger_entry_id": "9f" * 32, "cameo_id": "cameo_ab12"}],
        },
    )
    reporter = UserFactory(handle="reporter1")
    reporter_api = client_for(reporter)
    filed = reporter_api.post(
        "/api/v1/reports",
        {
            "subject_type": "clip",
            "subject_id": clip.job.public_id,
            "reason": "sexual",
            "detail": "nudity from 1s",
            "time_start": 1,
            "time_end": 3,
        },
        format="json",
    )
    assert filed.status_code == 201, filed.content
    moderator = staff(handle="mod_ana")
    moderator.set_password(PASSWORD)
    moderator.save()
    viewer = UserFactory()
    # The creator posted it; a follower sees it in their Following feed.
    post = post_publish(user=creator, video_id=clip.job.public_id, caption="rooftop")
    user_follow(follower=viewer, followee=creator)
    viewer_api = client_for(viewer)

    def in_following_feed() -> bool:
        feed = viewer_api.get("/api/v1/feed/following")
        assert feed.status_code == 200, feed.content
        items = feed.json()["data"]
        return post.public_id in [item["post"]["id"] for item in items if item["type"] == "post"]

    assert in_following_feed()

    page.goto(f"{live_server.url}/staff/")
    assert "/staff/login" in page.url
    page.fill("input[name=username]", moderator.handle)
    page.fill("input[name=password]", PASSWORD)
    page.screenshot(path=str(shots / "console-1-login.png"))
    page.click("button[type=submit]")
    page.wait_for_selector("table.cases")
    assert "Reported for sexual" in page.inner_text("table.cases")
    page.screenshot(path=str(shots / "console-2-queue.png"), full_page=True)

    page.click("#take-next")
    page.wait_for_selector("#decide-form")
    case = Case.objects.get(queue="reports")
    assert page.inner_text("#case-id") == case.public_id
    assert Case.objects.get(pk=case.pk).assigned_to_id == moderator.pk
    media_url = live_server.url + page.get_attribute("#media-link", "href")
    assert page.request.get(media_url).status == 200
    body = page.inner_text("main")
    assert "@alice (person)" in body and "restrictions: politics" in body
    assert "nudity from 1s" in body and "1.0\u20133.0 s" in body
    page.screenshot(path=str(shots / "console-3-case.png"), full_page=True)

    page.select_option("#decision", "remove")
    page.select_option("#reason-code", "sexual_content")
    assert page.is_visible("input[name=strike]") and not page.is_visible("input[name=label]")
    page.fill("textarea[name=reason]", "Nudity at 0:01.")
    page.check("input[name=strike]")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#decide")
    page.wait_for_selector("#decision-made")
    assert page.inner_text("#case-status") == "resolved: remove"
    assert page.is_visible("#clip-removed")
    page.fill("#note-form textarea", "Same uploader as last week.")
    page.click("#note-form button")
    page.wait_for_selector("#notes li.note")
    page.screenshot(path=str(shots / "console-4-removed.png"), full_page=True)

    # The media link is dead, the clip is gone for every viewer, the reporter is told.
    assert page.request.get(media_url).status == 404
    clip.refresh_from_db()
    assert clip.removed_at is not None
    assert not Clip.objects.filter(clips_visible_q(viewer), pk=clip.pk).exists()
    assert not in_following_feed()
    assert viewer_api.get(f"/api/v1/posts/{post.public_id}").status_code == 404
    assert Report.objects.get().status == "actioned"
    notice = Notification.objects.get(user=reporter, kind="report.resolved")
    assert notice.data["decision"] == "remove"
    assert "Nudity at 0:01." in notice.data["outcome"]
    assert reporter_api.get("/api/v1/reports").json()["data"][0]["status"] == "actioned"
    assert Notification.objects.filter(user=creator, kind="moderation.action").exists()
