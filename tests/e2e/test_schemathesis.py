"""Property-based fuzzing of every operation in the running server's own OpenAPI document:
whatever schemathesis sends (schema-valid or not), the server never answers 5xx, and every
error is JSON in the envelope of its dialect with an `x-request-id`.

schemathesis' lazy pytest integration (`schemathesis.pytest.from_fixture`) does not work with
the installed pytest 9 (it sets `node._nodeid`), and the schema is only known once the
`server` fixture runs, so the test drives hypothesis itself: one `@given` per operation, over
the operation's positive and negative strategies."""

from __future__ import annotations

import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from wanimage.tasks.records import TaskStatus

MAX_EXAMPLES = 25
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def _drain(server, timeout: float = 90.0) -> None:
    """Valid fuzzed async submissions queue real tasks on the shared server: let them finish so
    later tests do not meet a busy queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.service.queue_depth() == 0 and server.service.store.count(TaskStatus.RUNNING) == 0:
            return
        time.sleep(0.2)


def _header(response, name: str) -> str:
    values = response.headers.get(name, [])  # schemathesis: lower-case names, list values
    return values[0] if values else ""


def _check(case, response) -> None:
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    assert _header(response, "x-request-id")
    if response.status_code >= 400:
        assert _header(response, "content-type").startswith("application/json"), response.text
        body = response.json()
        if case.path.startswith("/v1/"):
            assert set(body) == {"error"} and body["error"]["code"], body
        else:
            assert set(body) == {"request_id", "code", "message"}, body


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_no_server_errors(server, mode):
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    # Sanity: the document really lists the API (a broken /openapi.json would fuzz nothing).
    assert {
        "POST /api/v1/services/aigc/multimodal-generation/generation",
        "POST /api/v1/services/aigc/image-generation/generation",
        "GET /api/v1/tasks/{task_id}",
        "POST /v1/images/generations",
        "POST /v1/images/edits",
    } <= labels, labels

    failures: list[str] = []
    for operation in operations:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            _check(case, case.call(base_url=server.base_url, timeout=60))

        try:
            fuzz()
        except Unsatisfiable:  # nothing to generate (e.g. no parameters to make invalid)
            if mode is GenerationMode.POSITIVE:
                failures.append(f"{operation.label}: no positive example could be generated")
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:3000]}")
    _drain(server)
    assert not failures, "\n\n".join(failures)


# Boundary values random generation rarely reaches (an unbounded integer query parameter is
# one draw in many): every query parameter of the document gets each of them.
INTEGER_EDGES = ["0", "-1", "2147483648", "9223372036854775808", "-9223372036854775809", "1" + "0" * 30]
STRING_EDGES = ["", " ", "0001-01-01", "9999-12-31 23:59:59", "99991231235959", "\u00e9\u00e8", "x" * 5000,
                "%00", "../..", "NaN", "1e309"]


def test_list_tasks_huge_page_no_is_a_400(server):
    # page_no is bounded: (page_no - 1) * page_size once overflowed SQLite's 64-bit OFFSET.
    for value in ("9223372036854775808", "1" + "0" * 30, "1000001"):
        resp = httpx.get(server.base_url + "/api/v1/tasks", params={"page_no": value})
        assert resp.status_code == 400 and resp.json()["code"] == "InvalidParameter", resp.text


@pytest.mark.slow
def test_query_parameter_edges(server):
    raw = httpx.get(server.base_url + "/openapi.json").json()
    failures = []
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for path, item in raw["paths"].items():
            for method, op in item.items():
                query = [p for p in op.get("parameters", []) if p.get("in") == "query"]
                if not query or "{" in path:
                    continue
                for param in query:
                    schema = param.get("schema", {})
                    types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
                    values = INTEGER_EDGES if "integer" in types else STRING_EDGES
                    for value in values:
                        resp = client.request(method.upper(), path, params={param["name"]: value})
                        if resp.status_code >= 500:
                            failures.append(f"{method.upper()} {path}?{param['name']}={value[:40]}: "
                                            f"{resp.status_code} {resp.text[:200]}")
                        else:
                            assert resp.headers.get("x-request-id")
    assert not failures, "\n".join(failures)
