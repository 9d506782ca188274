import pytest

pytestmark = pytest.mark.fault


def test_stack_runs_web_and_worker_and_restarts_redis(stack, alice):
    web = stack.web()
    worker = stack.worker()
    session = stack.session(web).login(alice.username, alice.raw_password)
    status, _, body = session.get("/exports/")  # alice belongs to no domain: the list, not a redirect
    assert status == 200, body[:300]
    assert worker.children()
    stack.redis.client().set("k", "v")
    stack.redis.restart()
    assert stack.redis.client().get("k") == b"v"
    stack.redis.restart(empty=True)
    assert stack.redis.client().get("k") is None
