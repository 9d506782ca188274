"""The API's addresses, under /api/v1/ (project.urls); reversed as "api_v1:<name>"."""
from django.urls import re_path

from exports.web.api import api, json_urls, not_found

app_name = "api_v1"

urlpatterns = [
    *json_urls(api.urls[0]),
    re_path(r"", not_found),  # JSON 404 for anything else under /api/v1/
]
