from django.urls import path

from . import views

urlpatterns = [
    path("heartbeat/", views.heartbeat_status, name="heartbeat_status"),
    path("<str:download_id>/", views.retrieve_download, name="retrieve_download"),
    path("<str:download_id>/poll/", views.ajax_job_poll, name="ajax_job_poll"),
    path("<str:download_id>/status/", views.status_json, name="download_status"),
]
