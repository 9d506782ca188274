"""A Django project with soil as its only app, to prove soil stands alone (tests/test_soil_standalone.py)."""
from .celery import app

__all__ = ("app",)
