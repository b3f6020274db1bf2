"""End to end, with a real worker: someone else's published clip is remixed through the OpenAI
route; the lineage edge appears with the clip, its creator is notified, and a remix whose
parent is taken down while it renders is blocked at completion and never enters the graph."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.models import Notification
from generation.engines.base import RenderRequest, plan_from_dict
from generation.engines.registry import get_engine
from generation.models import ClipAudience, JobStatus
from generation.services import clip_remove
from remix.models import LineageEdge, LineageNode
from tests.factories import UserFactory
from tests.fixtures import client_for, start_worker
from tests.generation.e2e.helpers import job_of, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _frames(clip) -> np.ndarray:
    with clip.video.open("rb") as handle, av.open(io.BytesIO(handle.read())) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _raw_render(job) -> np.ndarray:
    request = RenderRequest(
        plan=plan_from_dict(job.plan), width=job.width, height=job.height, seed=job.seed
    )
    return get_engine(job.engine).render(request).frames


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-9)))


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


def test_a_stitch_renders_with_every_parent_in_its_manifest_and_in_the_graph(tmp_path):
    """Two of alice's clips joined by bob: one clip as long as both, an edge from each parent,
    and the signed manifest's ingredients (parentOf, then componentOf) name the same parents
    as the lineage API, in order."""
    alice, bob = UserFactory(), UserFactory()
    worker = start_worker(tmp_path, name="stitch")
    try:
        alice_api = client_for(alice)
        originals = []
        for prompt in ("a red ball bounces on a beach", "a paper boat drifts on a pond"):
            body = alice_api.post(
                "/api/v1/generations",
                {"prompt": prompt, "seconds": 1, "size": "512x512"},
                format="json",
            ).json()
            job = wait_finished(job_of(body), 180)
            assert job.status == JobStatus.COMPLETED, job.error_message
            job.clip.audience = ClipAudience.PUBLIC
            job.clip.save(update_fields=["audience"])
            originals.append(job)

        bob_api = client_for(bob)
        response = bob_api.post(
            "/api/v1/generations/stitch",
            {"videos": [j.public_id for j in originals], "prompt": "the ball lands in the boat"},
            format="json",
        )
        assert response.status_code == 201, response.content
        stitch = wait_finished(job_of(response.json()), 240)
        assert stitch.status == JobStatus.COMPLETED, stitch.error_message
        assert stitch.clip.duration_s == pytest.approx(2, abs=0.1)

        # Each segment is its clip's own plan rendered again: as close to that plan's raw
        # render as the clip itself is (each carries its own visible and invisible marks, so
        # neither is exact), and far from the other clip's.
        joined = _frames(stitch.clip)
        cut = len(_frames(originals[0].clip))
        parts = [joined[:cut], joined[cut:]]
        for index, job in enumerate(originals):
            raw = _raw_render(job)
            assert len(parts[index]) == len(raw)
            own, other = _psnr(raw, parts[index]), _psnr(raw, parts[1 - index][: len(raw)])
            assert own > _psnr(raw, _frames(job.clip)) - 2 and own > other + 5

        edges = LineageEdge.objects.filter(child__job=stitch).order_by("id")
        assert [(e.parent.job_id, e.kind) for e in edges] == [
            (originals[0].pk, "stitch"),
            (originals[1].pk, "stitch"),
        ]
        assert Notification.objects.filter(user=alice, kind="remix.created").count() == 1

        with stitch.clip.video.open("rb") as handle:
            upload = SimpleUploadedFile("stitch.mp4", handle.read(), content_type="video/mp4")
        report = APIClient().post("/api/v1/provenance/verify", {"file": upload}).json()
        assert report["verdict"] == "authentic", report.get("reasons")
        assert report["manifest"]["ingredients"] == [
            {"relationship": "parentOf", "job_id": originals[0].public_id},
            {"relationship": "componentOf", "job_id": originals[1].public_id},
        ]
        lineage = bob_api.get(f"/api/v1/lineage/{stitch.public_id}").json()
        assert [p["id"] for p in lineage["parents"]] == [
            item["job_id"] for item in report["manifest"]["ingredients"]
        ]
    finally:
        worker.stop()
