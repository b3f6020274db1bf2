"""WSGI entry point: production serves REST through gunicorn (``config.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from django.conf import settings as _settings  # noqa: E402

if _settings.PROVENANCE_VERIFY_PREWARM:
    # The verification API's media reader starts with the server, not on its first request.
    from generation.verification import reader_start

    reader_start()
