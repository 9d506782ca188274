"""The site's home page ("/", named "home"), which shows the user's exports; project/urls.py includes it."""
from django.urls import path

from exports.web import views

urlpatterns = [path("", views.site_home, name="home")]
