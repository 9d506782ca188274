"""The project's URLs plus celery-progress's `get_progress` behind `login_required`, for benchmark_poll only."""
from celery_progress.views import get_progress
from django.contrib.auth.decorators import login_required
from django.urls import include, path

urlpatterns = [
    path("benchmark/celery-progress/<str:task_id>/", login_required(get_progress), name="benchmark_celery_progress"),
    path("", include("project.urls")),
]
