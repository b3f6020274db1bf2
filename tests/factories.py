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
