from django.apps import AppConfig


class CameoConfig(AppConfig):
    name = "cameo"
