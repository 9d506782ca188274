"""Building export files: rows read from the database, written by a streaming writer per format,
split into parts for big exports, and published to storage. Nothing here knows about runs or Celery."""
