"""WebSocket routes."""

from django.urls import path

from clms_updates.consumers import ProgressConsumer

websocket_urlpatterns = [
    path("ws/progress/<str:kind>/<int:object_id>/", ProgressConsumer.as_asgi()),
]
