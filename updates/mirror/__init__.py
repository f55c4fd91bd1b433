"""Serving as a LAN mirror for other school agents (``serving``, ``api``).

Being a mirror's client is ``updates.sources.mirror``.
"""
