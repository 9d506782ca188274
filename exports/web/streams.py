"""Server-sent events: a run's status pushed to its page (``text/event-stream``) as it changes.

The stream reads the run (the row, and the live percentage from Redis while it runs:
exports.runs.status.run_status, the same reads as one poll of the JSON status) and sends the status
whenever it differs from the last one sent. It reads again as soon as the run's task record is
written (every progress report and task state is published on Redis as it is stored: a soil
progress watch, one Redis connection per stream; EXPORT_STREAM_PUSH) or the run changes state (every
transition of exports.runs.lifecycle announces itself on the run's channel: the build, a partitioned
build's assembly, a user's cancel, the reaper), and in any case every EXPORT_STREAM_POLL_SECONDS. So
progress and states reach the page the moment they happen, while the row stays the truth: the
message is only a wake-up, and a lost or never-sent one (an operator's UPDATE by hand) cannot leave
a page stuck, only a second late.

A comment line is sent every EXPORT_STREAM_KEEPALIVE_SECONDS so that proxies keep the connection
and a closed one is noticed. The stream ends after the status of a finished run, or after
EXPORT_STREAM_MAX_SECONDS, when the browser's EventSource reconnects by itself: so no stream holds
a server thread or connection for long. Under ASGI the stream is an async iterator (it waits on
the event loop and reads in a shared pool); under WSGI it is a plain iterator that holds its
thread for the stream's life (see docs/operations.md, "Server-sent events").
"""
import asyncio
import json
import time

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import StreamingHttpResponse

from exports.conf import exports_conf
from exports.models import ExportRun
from exports.runs import reaper, selectors
from exports.runs.lifecycle import run_channel
from exports.runs.status import run_status
from soil.progress import async_watch_progress, watch_progress

FINAL = {"succeeded", "failed", "cancelled", "expired"}
KEEPALIVE = b": keep-alive\n\n"


def status_event(status):
    return f"event: status\ndata: {json.dumps(status, separators=(',', ':'))}\n\n".encode()


class StatusStream:
    """What to send after each read of a run's status; no I/O of its own, so both loops share it."""

    def __init__(self, run, now, poll=None, keepalive=None, lifetime=None):
        self.run_id = run.pk
        self.task_id = run.task_id
        self.poll = poll or exports_conf.EXPORT_STREAM_POLL_SECONDS
        self.keepalive = keepalive or exports_conf.EXPORT_STREAM_KEEPALIVE_SECONDS
        self.ends_at = now + (lifetime or exports_conf.EXPORT_STREAM_MAX_SECONDS)
        self.last_status = None
        self.last_sent_at = now
        self.finished = False

    def opening(self):
        # The browser waits this long (ms) before it reconnects after the stream ends.
        return f"retry: {int(self.poll * 1000) + 1000}\n\n".encode()

    def read(self):
        """The run's status now (the reaper's check included, as the JSON status does)."""
        try:
            run = reaper.check_run(ExportRun.objects.get(pk=self.run_id))
            self.task_id = run.task_id  # a run queued again has a new one
            return run_status(run)
        except ExportRun.DoesNotExist:
            return None
        finally:
            close_old_connections()  # a stream must not hold a database connection between reads

    def after_read(self, status, now):
        """The chunks to send after a read at `now`; sets `finished` when the stream should end."""
        chunks = []
        if status is None:
            self.finished = True
            return [b"event: gone\ndata: {}\n\n"]
        if status != self.last_status:
            chunks.append(status_event(status))
            self.last_status, self.last_sent_at = status, now
        elif now - self.last_sent_at >= self.keepalive:
            chunks.append(KEEPALIVE)
            self.last_sent_at = now
        self.finished = status["run_status"] in FINAL or now + self.poll >= self.ends_at
        return chunks

    def chunks(self, first_status):
        """A plain iterator (WSGI): holds its thread, waiting between reads for a write or the poll."""
        close_old_connections()  # whatever the middleware opened after the view
        yield self.opening()
        yield from self.after_read(first_status, time.monotonic())
        if self.finished or not exports_conf.EXPORT_STREAM_PUSH:
            while not self.finished:
                time.sleep(self.poll)
                yield from self.after_read(self.read(), time.monotonic())
            return
        with watch_progress(self.task_id, channels=[run_channel(self.run_id)]) as watch:
            while True:
                status = self.read()  # the first read catches a write made before the watch began
                watch.follow(self.task_id)
                yield from self.after_read(status, time.monotonic())
                if self.finished:
                    return
                watch.wait(self.poll)

    async def async_chunks(self, first_status):
        """An async iterator (ASGI): waits on the event loop; reads in the shared thread pool."""
        read = sync_to_async(self.read, thread_sensitive=False)
        yield self.opening()
        for chunk in self.after_read(first_status, time.monotonic()):
            yield chunk
        if self.finished or not exports_conf.EXPORT_STREAM_PUSH:
            while not self.finished:
                await asyncio.sleep(self.poll)
                for chunk in self.after_read(await read(), time.monotonic()):
                    yield chunk
            return
        watch = await async_watch_progress(self.task_id, channels=[run_channel(self.run_id)])
        try:
            while True:
                status = await read()
                await watch.follow(self.task_id)
                for chunk in self.after_read(status, time.monotonic()):
                    yield chunk
                if self.finished:
                    return
                await watch.wait(self.poll)
        finally:
            await watch.close()


@login_required
def run_status_stream(request, run_id):
    """The run's status as server-sent events; the first event is the status now.

    A plain view: under ASGI Django keeps a thread per open request whatever the view is (measured,
    docs/performance.md), and the stream itself, an async iterator there, sleeps on the event loop.
    """
    run = reaper.check_run(selectors.run_for(request.user, run_id))
    first = run_status(run)
    close_old_connections()  # the stream reads on connections of its own, one read at a time
    stream = StatusStream(run, time.monotonic())
    content = stream.async_chunks(first) if isinstance(request, ASGIRequest) else stream.chunks(first)
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
