"""A test client whose every answer under /api/v1/ is checked against the API's own OpenAPI schema.

The API tests make their requests through it, so each response they see, errors and files included,
is one the schema documents: its status code, its content type and its body.
"""
import functools

import requests
import schemathesis
from django.test import Client
from schemathesis.core.transport import Response

API_PREFIX = "/api/v1/"


@functools.cache
def openapi_schema():
    from exports.web.api import api

    return schemathesis.openapi.from_dict(api.get_openapi_schema())


UNDOCUMENTED = {API_PREFIX + "openapi.json", API_PREFIX + "docs"}  # the schema and its page


def check_against_schema(method, path, response):
    """Fail unless `response` (of a Django test client) to `method path` is documented by the schema.

    Returns whether it was checked: an address that is no operation (the catch-all JSON 404, a method
    the address does not take, the schema itself) has nothing to be checked against."""
    schema = openapi_schema()
    operation = schema.find_operation_by_path(method, path)
    if operation is None:
        assert response.status_code in (404, 405) or path in UNDOCUMENTED, f"{method} {path} is not in the schema"
        return False
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content)
        response.streaming_content = [body]  # the test reads it again
    else:
        body = response.content
    headers = {key: [value] for key, value in response.headers.items()}
    request = requests.Request(method, "http://testserver" + path).prepare()
    wrapped = Response(response.status_code, headers, body, request=request, elapsed=0.0, verify=True)
    schema.validate_response(operation, wrapped)
    return True


class SchemaCheckedClient(Client):
    """django.test.Client, checking every API answer against the schema (other addresses pass unchecked)."""

    def request(self, **request):
        response = super().request(**request)
        path = request["PATH_INFO"]
        if path.startswith(API_PREFIX):
            response.checked_against_schema = check_against_schema(request["REQUEST_METHOD"], path, response)
        return response
