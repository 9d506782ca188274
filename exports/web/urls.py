from django.urls import include, path, re_path

from exports.web import api, streams, views

app_name = "exports"

urlpatterns = [
    path("", views.exports_home, name="home"),
    path("mine/", views.my_exports, name="mine"),  # before <slug:slug>/: a domain slugged "mine" is shadowed
    path("runs/<uuid:run_id>/", views.run_page, name="run"),
    path("runs/<uuid:run_id>/status/", views.run_status_json, name="run_status"),
    path("runs/<uuid:run_id>/events/", streams.run_status_stream, name="run_events"),
    path("runs/<uuid:run_id>/download/", views.download_run, name="download"),
    path("runs/<uuid:run_id>/cancel/", views.cancel_run, name="cancel"),
    path("runs/<uuid:run_id>/notify/", views.notify_run, name="notify"),
    path("runs/<uuid:run_id>/rerun/", views.rerun, name="rerun"),
    path("runs/<uuid:run_id>/delete/", views.delete_run, name="delete"),
    # The first API's addresses (api_start, api_run, api_file), deprecated: /api/v1/ replaces them.
    path("api/", include(api.json_urls(api.legacy_api.urls[0]))),
    re_path(r"^api/", api.not_found, name="api_not_found"),  # JSON 404 for anything else under api/
    path("<slug:slug>/", views.domain_exports, name="domain"),
    path("<slug:slug>/definitions/new/", views.edit_definition, name="definition_new"),
    path("<slug:slug>/definitions/<int:definition_id>/", views.edit_definition, name="definition_edit"),
    path("<slug:slug>/definitions/<int:definition_id>/start/", views.start_export, name="start"),
    path("<slug:slug>/definitions/<int:definition_id>/export/", views.export_dialog, name="export_dialog"),
    path("<slug:slug>/saved/<int:definition_id>/", views.download_saved, name="saved_download"),
    path("<slug:slug>/saved/<int:definition_id>/rebuild/", views.rebuild_saved, name="saved_rebuild"),
]
