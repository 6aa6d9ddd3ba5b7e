"""WSGI entry point: ``gunicorn wsgi:app`` (see README, Deployment)."""

from clinic_portal import create_app

app = create_app()
