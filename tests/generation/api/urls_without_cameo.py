"""The OpenAI routes as the generation app alone serves them (no cameo app in front)."""

from django.urls import include, path

from generation.urls import openai_urlpatterns

urlpatterns = [path("v1/", include(openai_urlpatterns))]
