"""An export run from start to finish: the run services, its lifecycle and leases, the reaper, the
status pages and scripts read, and queueing (the one place that sends the service's tasks)."""
