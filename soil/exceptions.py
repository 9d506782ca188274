"""Exceptions of the soil API."""


class TaskFailedError(Exception):
    """A task ended in FAILURE; `.errors` is the list it reported (or its message)."""

    def __init__(self, errors=None, exception_name=None, exception_message=None):
        if errors is None:
            errors = []
        elif isinstance(errors, str):
            errors = [errors]
        self.errors = list(errors)
        self.exception_name = exception_name
        self.exception_message = exception_message
        super().__init__(self.errors)

    def __str__(self):
        return "; ".join(str(error) for error in self.errors) or "The task failed."
