"""ASGI entry point (``config.asgi:application``): HTTP and the ``/ws/`` WebSocket.

In production the ingress routes ``/ws/`` here and REST to the WSGI workers; in development one
ASGI server serves both.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_asgi_app = get_asgi_application()

from django.conf import settings as _settings  # noqa: E402

if _settings.PROVENANCE_VERIFY_PREWARM:
    # The verification API's media reader starts with the server, not on its first request.
    from generation.verification import reader_start

    reader_start()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs apps loaded)
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from accounts.consumers import EventsConsumer  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Refuses a browser handshake from a foreign page; lets clients that send no Origin pass.

    Only browsers send ``Origin``, and only they carry ambient credentials a foreign page could
    ride on. Mobile apps and SDKs send none, and channels' own AllowedHostsOriginValidator
    would refuse them with 403 before the consumer even sees their token. Every socket still
    needs a token (``accounts.consumers``).
    """

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def allowed_origins() -> list[str]:
    # Same hosts as HTTP, plus the browser front ends trusted for CSRF (an app served from
    # another domain than the API).
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts + list(settings.CSRF_TRUSTED_ORIGINS)


websocket_urlpatterns = [path("ws/", EventsConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(URLRouter(websocket_urlpatterns), allowed_origins()),
    }
)
