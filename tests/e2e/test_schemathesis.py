"""Property-based fuzzing of every operation in the running server's own OpenAPI document:
whatever schemathesis sends (schema-valid or not), the server never answers 5xx, and every
error is JSON in the envelope of its dialect with an `x-request-id`.

schemathesis' lazy pytest integration (`schemathesis.pytest.from_fixture`) does not work with
the installed pytest 9 (it sets `node._nodeid`), and the schema is only known once the
`server` fixture runs, so the test drives hypothesis itself: one `@given` per operation, over
the operation's positive and negative strategies."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import png_bytes
from tests.e2e.test_validation import EDITS, GENERATIONS, SYNC
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


# ------------------------------------------------------------------ any text, in any field
# schemathesis never sends a lone surrogate ("cannot be encoded for the wire"), yet JSON carries
# one as "\ud800": here hypothesis puts any text (surrogates and NUL included) into every string
# field /openapi.json lists for the generation endpoints of both dialects, and into a field no
# model declares and a field's name. Nothing may answer 5xx or fail in the worker; text the
# server cannot carry is a 400 InvalidParameter naming the field.

SYNTHESIS = "/api/v1/services/aigc/text2image/image-synthesis"
UNKNOWN, KEY = "x_unknown", "<a field name>"
UNCARRIABLE = re.compile("[\x00\ud800-\udfff]")
ANY_CHAR = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00"))
TEXTS = st.one_of(st.text(ANY_CHAR, max_size=12),
                  st.sampled_from(["a cat \ud800", "a cat \x00", "\udfff\ud800", "a red fox", "768*768"]))
TEXT_SETTINGS = settings(max_examples=80, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck), print_blob=False)


@dataclass(frozen=True)
class Place:
    """Where a text goes: an endpoint's field (a property of its schema, UNKNOWN or KEY)."""

    endpoint: str  # "dashscope", "synthesis", "openai" or "openai-edit"
    field: str


def text_places(doc: dict[str, Any]) -> list[Place]:
    props = {name: list(schema.get("properties", {})) for name, schema in doc["components"]["schemas"].items()}
    extra = [UNKNOWN, KEY]
    return ([Place("dashscope", f) for f in ["model", "prompt", "image", *props["Parameters"], *extra]]
            + [Place("synthesis", f) for f in ["model", *props["SynthesisInput"], *props["Parameters"], *extra]]
            + [Place("openai", f) for f in [*props["GenerationsBody"], *extra]]
            + [Place("openai-edit", f) for f in [*props["GenerationsBody"], UNKNOWN]])


SYNTHESIS_INPUT = ("prompt", "negative_prompt", "ref_img", "images")


def put(place: Place, text: str) -> tuple[str, dict[str, Any], str]:
    """The path, a valid body with `text` at `place`, and the field a refusal must name."""
    key, value = (text, 1) if place.field == KEY else (place.field, text)
    if place.endpoint in ("openai", "openai-edit"):
        body = {"prompt": "a red fox", "size": "768x768", key: value}
        if place.endpoint == "openai":
            return GENERATIONS, body, "body" if place.field == KEY else key
        return EDITS, body, "image" if key == "images" else key  # the form's images all are `image`
    if place.endpoint == "dashscope":
        content = [{"text": "a red fox"}]
        body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": content}]},
                "parameters": {"size": "768*768"}}
        path, holder = SYNC, body["parameters"]
        if key in ("prompt", "image"):
            content[:] = [{"text": text}] if key == "prompt" else [*content, {"image": text}]
            return path, body, key
    else:
        body = {"model": "wan2.7-image", "input": {"prompt": "a red fox"}, "parameters": {"size": "768*768"}}
        path, holder = SYNTHESIS, body["input"] if key in SYNTHESIS_INPUT else body["parameters"]
    (body if key == "model" else holder)[key] = value
    return path, body, "parameters" if place.field == KEY else key


def send_text(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    if path == EDITS:  # a form: the text as its UTF-8 bytes (a surrogate: bytes no decoder accepts)
        data = {k: v.encode("utf-8", "surrogatepass") if isinstance(v, str) else str(v) for k, v in body.items()}
        return client.post(path, data=data, files=[("image", ("a.png", png_bytes(320, 240)))])
    headers = {"content-type": "application/json", "X-DashScope-Async": "enable"}
    return client.post(path, content=json.dumps(body), headers=headers)  # "\ud800" as JSON escapes it


def finished(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    """An async submission, followed to its end: a task failed in the worker is the 500 a sync
    caller would have received."""
    task_id = response.json()["output"]["task_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        output = client.get(f"/api/v1/tasks/{task_id}").json()["output"]
        if output.get("finished"):
            return output
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


@pytest.mark.store_independent  # the rules of a request, not the store: one backend is enough
def test_generation_endpoints_take_any_text(backend, request):
    server = request.getfixturevalue("server")
    places = text_places(httpx.get(server.base_url + "/openapi.json").json())
    with httpx.Client(base_url=server.base_url, timeout=60) as client:

        @TEXT_SETTINGS
        @given(place=st.sampled_from(places), text=TEXTS)
        def check(place: Place, text: str) -> None:
            path, body, field = put(place, text)
            response = send_text(client, path, body)
            assert response.status_code < 500, (place, text, response.text)
            refused = "\x00" in text if path == EDITS and place.field != KEY else UNCARRIABLE.search(text)
            if refused:
                error = response.json()
                code, named = (error["error"]["code"], error["error"]["param"]) if path.startswith("/v1/") \
                    else (error["code"], error["message"].partition(":")[0])
                assert (response.status_code, code, named) == (400, "InvalidParameter", field), response.text
            elif path == SYNTHESIS and response.status_code == 200:
                output = finished(client, response)
                assert not output.get("code", "").startswith("InternalError"), (place, text, output)

        check()
    _drain(server)
