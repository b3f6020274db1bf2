from django.apps import AppConfig


class RemixConfig(AppConfig):
    name = "remix"
