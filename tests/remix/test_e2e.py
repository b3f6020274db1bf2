"""End to end, with a real worker: someone else's published clip is remixed through the OpenAI
route; the lineage edge appears with the clip, its creator is notified, and a remix whose
parent is taken down while it renders is blocked at completion and never enters the graph."""

from __future__ import annotations

import pytest

from accounts.models import Notification
from generation.models import ClipAudience, JobStatus
from generation.services import clip_remove
from remix.models import LineageEdge, LineageNode
from tests.factories import UserFactory
from tests.fixtures import client_for, start_worker
from tests.generation.e2e.helpers import job_of, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _remix(client, video_id: str, prompt: str):
    response = client.post(f"/v1/videos/{video_id}/remix", {"prompt": prompt}, format="json")
    assert response.status_code == 200, response.content
    return job_of({"data": [response.json()]})


def test_remix_of_another_creators_clip_is_recorded_and_credited(tmp_path):
    alice, bob = UserFactory(), UserFactory()
    worker = start_worker(tmp_path, name="remix")
    try:
        body = (
            client_for(alice)
            .post(
                "/api/v1/generations",
                {"prompt": "a red ball bounces on a beach", "seconds": 1, "size": "512x512"},
                format="json",
            )
            .json()
        )
        original = wait_finished(job_of(body), 180)
        assert original.status == JobStatus.COMPLETED, original.error_message
        clip = original.clip
        clip.audience = ClipAudience.PUBLIC
        clip.save(update_fields=["audience"])

        bob_api = client_for(bob)
        remix = wait_finished(_remix(bob_api, original.public_id, "a blue ball bounces"), 180)
        assert remix.status == JobStatus.COMPLETED, remix.error_message
        edge = LineageEdge.objects.get()
        assert (edge.parent.job_id, edge.child.job_id, edge.kind) == (
            original.pk,
            remix.pk,
            "remix",
        )
        assert LineageNode.objects.get(job=original).descendants_count == 1
        note = Notification.objects.get(user=alice, kind="remix.created")
        assert note.data["video_id"] == remix.public_id and note.actor == bob
        lineage = bob_api.get(f"/api/v1/lineage/{remix.public_id}").json()
        assert lineage["original"]["id"] == original.public_id

        # Taken down while the next remix renders: refused at completion, not in the graph.
        doomed = _remix(bob_api, original.public_id, "a green ball bounces")
        clip_remove(clip=clip, actor="staff:1", reason="policy", code="policy")
        doomed = wait_finished(doomed, 180)
        assert doomed.status == JobStatus.BLOCKED and doomed.error_code == "parent_removed"
        assert not LineageNode.objects.filter(job=doomed).exists()
        assert LineageNode.objects.get(job=original).descendants_count == 1
    finally:
        worker.stop()
