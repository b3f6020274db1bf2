from django.apps import AppConfig


class RemixConfig(AppConfig):
    name = "remix"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from generation.models import Clip
        from remix.signals import clip_stored

        post_save.connect(clip_stored, sender=Clip, dispatch_uid="remix.clip_stored")
