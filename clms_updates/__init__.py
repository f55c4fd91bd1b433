"""CLMS Updates: the project package shared by the school agent and the vendor server."""

from .celery import app as celery_app

__all__ = ("celery_app",)
