"""A bounded fuzz of the API with schemathesis: requests made from the schema, valid and invalid, to every
operation; none may get a 500, and every answer must be one the schema documents.

Bounded (a few examples per operation, no shrinking) so that it runs in seconds; FUZZ_EXAMPLES raises it.
"""
import json
import os
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition
from project.accounts.tokens import create_token
from tests.api_schema import SchemaCheckedClient, openapi_schema

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))


def send(client, case):
    """The generated request, made through the Django test client (so the test database is the one read)."""
    path = case.operation.path
    for name, value in (case.path_parameters or {}).items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    query = urlencode(case.query or {}, doseq=True)
    body = case.body
    if body is None or type(body).__name__ == "NotSet":
        body = ""
    elif not isinstance(body, bytes):
        body = json.dumps(body)
    return client.generic(case.method.upper(), path, body, content_type="application/json", QUERY_STRING=query)


@pytest.mark.parametrize("known_ids", [True, False], ids=["real addresses", "generated addresses"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
def test_fuzzed_requests_to_every_operation_get_no_500_and_documented_answers(alice, mode, known_ids):
    domain = ensure_demo_domain(slug="fuzz", name="Fuzz", members=[alice])
    add_demo_rows(domain, 3)
    definition = ExportDefinition.objects.filter(domain=domain).first()
    client = SchemaCheckedClient(HTTP_AUTHORIZATION="Bearer " + create_token(alice, "fuzz")[1])
    # What the server answers to an address is checked by the client; here, that nothing is a 500.
    for result in openapi_schema().get_all_operations():
        operation = result.ok()
        known = {"slug": domain.slug, "definition_id": definition.pk}
        path_parameters = {name: value for name, value in known.items() if "{" + name + "}" in operation.path}

        @given(case=operation.as_strategy(generation_mode=mode,
                                          path_parameters=path_parameters if known_ids else None))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = send(client, case)
            assert response.status_code < 500, (case.method, case.operation.path, case.query, case.body,
                                                response.content[:500])

        fuzz()
