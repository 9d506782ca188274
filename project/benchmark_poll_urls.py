"""The project's URLs plus celery-progress's `get_progress`, as it ships (no login: the task id is the
capability) and behind `login_required`, for benchmark_poll only. They sit just before soil's URLs, so
that both are found after the same patterns."""
from celery_progress.views import get_progress
from django.contrib.auth.decorators import login_required
from django.urls import path

from project.urls import urlpatterns as project_urlpatterns

celery_progress_urlpatterns = [
    path("benchmark/celery-progress/<str:task_id>/", get_progress, name="benchmark_celery_progress"),
    path("benchmark/celery-progress-login/<str:task_id>/", login_required(get_progress),
         name="benchmark_celery_progress_login"),
]
soil_at = next(i for i, pattern in enumerate(project_urlpatterns) if str(pattern.pattern) == "downloads/")
urlpatterns = project_urlpatterns[:soil_at] + celery_progress_urlpatterns + project_urlpatterns[soil_at:]
