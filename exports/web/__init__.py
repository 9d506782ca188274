"""The export service over HTTP: pages, forms, the JSON API, the event stream and their urls."""
