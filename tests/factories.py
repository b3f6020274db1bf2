import datetime as dt
import os

import factory

from accounts.models import User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    handle = factory.Sequence(lambda n: f"user{n:04d}")
    display_name = factory.LazyAttribute(lambda o: o.handle.title())
    email = factory.LazyAttribute(lambda o: f"{o.handle}@example.test")
    birth_date = dt.date(1990, 1, 1)
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeenFactory(UserFactory):
    birth_date = factory.LazyFunction(
        lambda: dt.date.today().replace(year=dt.date.today().year - 15)
    )


def clip_row_fields() -> dict:
    """What the pipeline records on every clip it stores — a manifest that read back as valid
    and a unique watermark payload — for tests that create clip rows directly (the database
    refuses a clip row without them)."""
    return {"manifest": {"state": "trusted"}, "watermark": os.urandom(8)}


def completed_clip(
    owner,
    *,
    parent=None,
    kind: str = "remix",
    audience: str = "public",
    prompt: str = "a red ball bouncing",
    annotations: dict | None = None,
    files: dict[str, bytes] | None = None,
    duration_s: float = 1,
    **fields,
):
    """A completed job and its clip row, written as the worker writes them (so receivers such
    as the lineage graph's run as in production). ``files`` (file name -> bytes, e.g.
    ``video.mp4``; the stem names the clip's field) are stored where the worker stores them,
    for tests that serve media; without it the clip names no files."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from generation.models import Clip, GenerationJob, JobKind, JobStage, JobStatus

    job = GenerationJob.objects.create(
        user=owner,
        kind=kind if parent else JobKind.CREATE,
        prompt=prompt,
        model="sora-2",
        engine="previs",
        seconds=1,
        size="512x512",
        seed=1,
        params={},
        params_hash="0" * 64,
        parent=parent.job if parent else None,
        annotations=annotations or {},
        status=JobStatus.COMPLETED,
        stage=JobStage.DONE,
    )
    stored = {
        filename.split(".")[0]: default_storage.save(
            f"clips/{job.id.hex}/1/{filename}", ContentFile(data)
        )
        for filename, data in (files or {}).items()
    }
    row = {
        **clip_row_fields(),
        "duration_s": duration_s,
        "width": 512,
        "height": 512,
        "bytes": len((files or {}).get("video.mp4", b"")) or 1,
        "sha256": "0" * 64,
        "audience": audience,
        **stored,
        **fields,
    }
    return Clip.objects.create(job=job, user=owner, **row)
