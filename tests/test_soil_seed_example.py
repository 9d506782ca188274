"""The testing example of docs/task-authors.md ("Unit-testing a task's errors"), exactly as written there."""
from unittest.mock import patch

from celery import states

from tests.celery_tasks import fail_with_errors


@patch("tests.celery_tasks.fail_with_errors.update_state")
def test_fail_with_errors_reports_its_errors(update_state, eager):
    fail_with_errors.delay(["Column 'date' is missing"])
    update_state.assert_called_with(state=states.FAILURE, meta={"errors": ["Column 'date' is missing"]})
