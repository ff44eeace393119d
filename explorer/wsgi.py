"""WSGI entry point for any WSGI server: ``teelog.explorer.wsgi:app``, configured by the
environment (``TEELOG_DATA`` and the variables of ``explorer.config``)."""

from __future__ import annotations

from .app import create_app

app = create_app()
