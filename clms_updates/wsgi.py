"""WSGI entry point (plain HTTP only; production uses the ASGI app for WebSockets)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clms_updates.settings")

application = get_wsgi_application()
