"""The DashScope Java SDK's requests, sent exactly as it sends them (tests/fixtures/java/, read from
its sources), against a real server; each answer is read the way the SDK's classes read it: which
object becomes `getOutput()` (both the 2.22.29 rule and the one before 2.22.27), the Java type
Gson maps each field into, and OkHttp's SSE reader for `streamCall`."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import png_bytes
from tests.support.test_engine import DeterministicEngine

pytestmark = pytest.mark.store_independent  # the Java SDK's shapes and uploads; async, worker, cancel and list tests run on both

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "java"
JSON_TYPES = {"String": str, "Boolean": bool, "Integer": int, "Long": int, "Double": (int, float),
              "Object": (dict, str, int, float, bool, list)}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def send(server, name: str, *, body: dict | None = None, timeout: float = 30) -> httpx.Response:
    """One fixture request, headers and body as the Java SDK writes them."""
    req = fixture(name)["request"]
    content = json.dumps(body or req.get("body")) if req["method"] == "POST" else None
    return httpx.request(req["method"], server.api_base + req["path"], params=req.get("query"),
                         headers=req["headers"], content=content, timeout=timeout)


# ------------------------------------------------------------------ how the Java SDK reads answers


def java_output(body: dict, sdk: str = "2.22.29") -> Any:
    """`DashScopeResult.fromResponse` over HTTP: the object `getOutput()` returns. From 2.22.27 on,
    `output` wins and the whole body (less request_id) is taken only when there is none and a `data`
    key exists; before, a `data` key made the whole body the output."""
    whole = {k: v for k, v in body.items() if k != "request_id"}
    if sdk == "2.22.26":
        return whole if "data" in body else body.get("output")
    if body.get("output") is not None:
        return body["output"]
    return whole if "data" in body else None


def values_at(obj: Any, path: str) -> list[Any]:
    """Every value at a dotted path, `[]` stepping into lists: "data[].gmt_create"."""
    values = [obj]
    for part in path.split("."):
        step, each = part.removesuffix("[]"), part.endswith("[]")
        values = [v[step] for v in values if isinstance(v, dict) and v.get(step) is not None]
        if each:
            values = [item for v in values if isinstance(v, list) for item in v]
    return values


def assert_java_types(obj: Any, reads: dict[str, str]) -> None:
    """Each field present maps into its Java type (absent fields are null in Java, which is fine)."""
    for path, java_type in reads.items():
        if java_type not in JSON_TYPES:
            continue
        for value in values_at(obj, path):
            ok = isinstance(value, JSON_TYPES[java_type]) and not (java_type != "Boolean" and isinstance(value, bool))
            assert ok, f"{path}: {value!r} does not map into a Java {java_type}"


def read_sse(text: str) -> list[dict[str, Any]]:
    """Events as OkHttp's EventSource hands them over: `field:value` lines (one optional space after
    the colon), `:comment` lines skipped, a blank line ends an event."""
    events, current = [], {}
    for line in text.split("\n"):
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            current.setdefault("comments", []).append(line[1:])
            continue
        name, _, value = line.partition(":")
        current[name] = value[1:] if value.startswith(" ") else value
    return events


def data_uri(width: int, height: int, color=(10, 120, 200)) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(width, height, color)).decode()


def pixels(url: str) -> bytes:
    return Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB").tobytes()


def image_items(output: dict) -> list[dict]:
    return [c for ch in output["choices"] for c in ch["message"]["content"] if c.get("type") == "image"]


def wait_task(server, task_id: str, headers: dict | None = None, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.api_base}/tasks/{task_id}", headers=headers).json()
        if body["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


# ------------------------------------------------------------------ generation: string and numeric forms


def test_call_with_string_thinking_mode_and_numeric_palette(server):
    case = fixture("image_generation_call.json")
    rsp = send(server, "image_generation_call.json")
    assert rsp.status_code == 200, rsp.text
    output = java_output(rsp.json())
    assert_java_types(rsp.json(), case["reads"])
    assert len(image_items(output)) == 1 and output["finished"] is True
    assert any(c.get("type") == "text" for c in output["choices"][0]["message"]["content"])  # thinking ran
    job = server.engine.jobs[-1]
    assert [(c.rgb, round(c.weight, 6)) for c in job.palette] == [
        ((255, 87, 51), 0.6), ((51, 193, 255), 0.25), ((46, 46, 46), 0.15)]


@pytest.mark.every_store
def test_async_call_with_string_numbers_and_booleans_then_wait(server):
    rsp = send(server, "image_generation_async_call.json")
    assert rsp.status_code == 200, rsp.text
    task = java_output(rsp.json())
    assert task["task_status"] == "PENDING"
    done = wait_task(server, task["task_id"])
    assert_java_types(done, fixture("image_generation_async_call.json")["reads"])
    assert done["output"]["task_status"] == "SUCCEEDED" and done["usage"]["image_count"] == 2  # n = "2"


@pytest.mark.parametrize(("name", "value"), [("watermark", "yes"), ("thinking_mode", "1"), ("n", "abc"),
                                             ("seed", "4.5")])
def test_other_strings_stay_refused_naming_the_field(server, name, value):
    body = fixture("image_generation_call.json")["request"]["body"]
    rsp = send(server, "image_generation_call.json", body={**body, "parameters": {**body["parameters"], name: value}})
    assert rsp.status_code == 400 and rsp.json()["message"].startswith(f"{name}:"), rsp.text


# ------------------------------------------------------------------ streamCall


def test_stream_call_frames(make_server):
    server = make_server(engine=DeterministicEngine(steps=4, step_seconds=0.05))
    case = fixture("image_generation_stream_call.json")
    with httpx.stream("POST", server.api_base + case["request"]["path"], headers=case["request"]["headers"],
                      content=json.dumps(case["request"]["body"]), timeout=30) as rsp:
        assert rsp.status_code == 200 and rsp.headers["content-type"].startswith("text/event-stream")
        events = read_sse(rsp.read().decode())
    assert [e["event"] for e in events] == ["result"] * len(events) and len(events) >= 2
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    assert all(e["comments"] == ["HTTP_STATUS/200"] for e in events)
    bodies = [json.loads(e["data"]) for e in events]
    for body in bodies:
        assert_java_types(body, case["reads"])
    *progress, final = [java_output(b) for b in bodies]
    assert all(p["task_status"] == "RUNNING" and "choices" not in p and p["finished"] is False for p in progress)
    assert [p["progress"] for p in progress] == [25, 50, 75, 100]
    plain = httpx.post(server.api_base + case["request"]["path"], json=case["request"]["body"], timeout=30).json()
    assert set(bodies[-1]) == set(plain) and bodies[-1]["usage"] == plain["usage"]
    assert final["finished"] is True and len(image_items(final)) == len(image_items(plain["output"])) == 1
    assert pixels(image_items(final)[0]["image"]) == pixels(image_items(plain["output"])[0]["image"])  # same seed


def test_stream_call_refused_request_is_an_error_frame_with_its_status(server):
    case = fixture("image_generation_stream_call.json")
    body = {**case["request"]["body"], "parameters": {"n": 9}}
    rsp = send(server, "image_generation_stream_call.json", body=body)
    # OkHttp's EventSource fails on a non-2xx; parseFailed reads the `data:` line and the status
    assert rsp.status_code == 400 and rsp.headers["content-type"].startswith("text/event-stream")
    (event,) = read_sse(rsp.text)
    assert event["event"] == "error" and event["comments"] == ["HTTP_STATUS/400"]
    error = json.loads(event["data"])
    assert error["code"] == "InvalidParameter" and error["message"].startswith("n:") and error["request_id"]


def test_stream_call_failing_task_ends_with_an_error_frame(server):
    case = fixture("image_generation_stream_call.json")
    body = {**case["request"]["body"], "input": {"messages": [{"role": "user", "content": [{"text": "EXPLODE"}]}]}}
    rsp = send(server, "image_generation_stream_call.json", body=body)
    assert rsp.status_code == 200  # the stream had started: the error is its last frame
    last = read_sse(rsp.text)[-1]
    assert last["event"] == "error" and last["comments"] == ["HTTP_STATUS/500"]
    assert json.loads(last["data"])["code"].startswith("InternalError")


def test_accept_event_stream_alone_asks_for_sse(server):
    case = fixture("image_generation_stream_call.json")
    headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
    rsp = httpx.post(server.api_base + case["request"]["path"], headers=headers, json=case["request"]["body"],
                     timeout=30)
    assert rsp.headers["content-type"].startswith("text/event-stream")
    assert read_sse(rsp.text)[-1]["event"] == "result"


@pytest.mark.every_store
def test_stream_progress_from_a_worker_in_another_process(make_server):
    """`wanimage worker` runs the task: its progress reaches the stream through the task store."""
    import signal

    from tests.e2e.test_worker_process import start_worker

    api = make_server(workers=0)
    worker = start_worker(api, "--steps", "8", "--step-seconds", "0.3")  # 2.4 s a task
    try:
        rsp = send(api, "image_generation_stream_call.json", timeout=60)
        bodies = [json.loads(e["data"]) for e in read_sse(rsp.text)]
        progress = [b["output"]["progress"] for b in bodies[:-1]]
        assert len(progress) >= 2 and progress == sorted(set(progress)), progress
        assert bodies[-1]["output"]["finished"] is True and len(image_items(bodies[-1]["output"])) == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0


@pytest.mark.every_store
def test_a_dropped_stream_cancels_the_task(make_server):
    server = make_server(engine=DeterministicEngine(steps=60, step_seconds=0.1))
    case = fixture("image_generation_stream_call.json")
    started = time.monotonic()
    with httpx.stream("POST", server.api_base + case["request"]["path"], headers=case["request"]["headers"],
                      content=json.dumps(case["request"]["body"]), timeout=10) as rsp:
        assert next(rsp.iter_lines()).startswith("id:")
    deadline = time.monotonic() + 10
    while not (tasks := server.service.list().tasks)[0].status.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tasks[0].status.value == "CANCELED"
    assert time.monotonic() - started < 6  # stopped, not run to the end


# ------------------------------------------------------------------ task list


@pytest.mark.every_store
def test_list_answers_javas_data_and_the_python_tasks_in_one_body(server):
    rsp = send(server, "image_generation_async_call.json")
    task_id = rsp.json()["output"]["task_id"]
    wait_task(server, task_id)
    failed = send(server, "image_generation_async_call.json", body={
        "model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": "EXPLODE"}]}]}})
    wait_task(server, failed.json()["output"]["task_id"])
    case = fixture("list_tasks.json")
    body = send(server, "list_tasks.json").json()
    assert "output" not in body  # else Java >= 2.22.27 would read `output` and find no list
    for sdk in ("2.22.29", "2.22.26"):
        result = java_output(body, sdk)
        assert_java_types(result, case["reads"])
        infos = {info["task_id"]: info for info in result["data"]}
        assert task_id in infos and failed.json()["output"]["task_id"] not in infos  # status filter
        assert all(i["status"] == "SUCCEEDED" and i["model_name"] == "wan2.7-image" for i in infos.values())
        info = infos[task_id]
        assert info["gmt_create"] <= info["start_time"] <= info["end_time"] <= time.time() * 1000
        assert info["gmt_create"] > (time.time() - 3600) * 1000  # epoch milliseconds
    assert body["page_no"] == 1 and body["page_size"] == 10 and body["total"] >= 1
    assert body["total_page"] == -(-body["total"] // 10)
    assert [t["task_id"] for t in body["tasks"]] == [d["task_id"] for d in body["data"]]  # today's shape too


# ------------------------------------------------------------------ uploads (OSSUtils)


def java_upload(server, headers: dict | None = None, color=(9, 99, 199)) -> str:
    """OSSUtils.uploadWithCertificate: the policy from `getOutput().data`, then the multipart POST."""
    case = fixture("upload_get_policy.json")
    req = case["request"]
    rsp = httpx.get(server.api_base + req["path"], params=req["query"], headers={**req["headers"], **(headers or {})})
    assert rsp.status_code == 200, rsp.text
    for sdk in ("2.22.29", "2.22.26"):
        assert_java_types(java_output(rsp.json(), sdk), case["reads"])
        assert set(java_output(rsp.json(), sdk)["data"]) >= {p.split(".")[1] for p in case["reads"]}
    policy = java_output(rsp.json())["data"]
    form = fixture("upload_post_form.json")["request"]
    key = policy["upload_dir"] + "/java photo.png"
    values = {"OSSAccessKeyId": policy["oss_access_key_id"], "Signature": policy["signature"],
              "policy": policy["policy"], "key": key, "x-oss-object-acl": policy["x_oss_object_acl"],
              "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"], "success_action_status": "200",
              "x-oss-content-type": "image/png"}
    assert list(values) + ["file"] == form["form"]
    up = httpx.post(policy["upload_host"], data=values, headers=form["headers"],
                    files={"file": ("java photo.png", png_bytes(320, 240, color), "image/png")})
    assert up.is_success, up.text
    return "oss://" + key


def edit_with(server, ref: str, headers: dict | None = None) -> httpx.Response:
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [
        {"text": "make it blue"}, {"image": ref}]}]}, "parameters": {"size": "1K"}}
    return httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body,
                      headers={"X-DashScope-OssResourceResolve": "enable", **(headers or {})}, timeout=30)


@pytest.mark.every_store
def test_list_entries_name_the_creating_key_by_its_id(make_server):
    server = make_server(api_keys="sk-java")
    headers = {"Authorization": "Bearer sk-java"}
    rsp = httpx.post(server.api_base + "/services/aigc/image-generation/generation", headers={
        **headers, "X-DashScope-Async": "enable"}, json=fixture("image_generation_async_call.json")["request"]["body"])
    wait_task(server, rsp.json()["output"]["task_id"], headers)
    (info,) = java_output(httpx.get(server.api_base + "/tasks", headers=headers).json())["data"]
    assert info["api_key_id"].startswith("key-") and "sk-java" not in info["api_key_id"]


def test_upload_policy_then_oss_reference(server):
    ref = java_upload(server)
    rsp = edit_with(server, ref)
    assert rsp.status_code == 200, rsp.text
    assert server.engine.jobs[-1].images[0].getpixel((3, 3)) == (9, 99, 199)


def test_oss_reference_without_the_resolve_header_is_accepted(server):
    """A choice (docs/api.md): the official service refuses oss:// without
    X-DashScope-OssResourceResolve: enable; wanimage resolves its own uploads either way."""
    ref = java_upload(server, color=(1, 200, 3))
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [
        {"text": "edit"}, {"image": ref}]}]}, "parameters": {"size": "1K"}}
    rsp = httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=30)
    assert rsp.status_code == 200, rsp.text
    assert server.engine.jobs[-1].images[0].getpixel((3, 3)) == (1, 200, 3)


def test_an_upload_is_usable_only_by_the_key_that_uploaded_it(make_server):
    server = make_server(api_keys="sk-java,sk-other")
    ref = java_upload(server)
    other = {"Authorization": "Bearer sk-other"}
    for call in (lambda: edit_with(server, ref, other),
                 lambda: httpx.post(server.base_url + "/v1/images/generations", headers=other, timeout=30,
                                    json={"model": "wan2.7-image", "prompt": "x", "image": ref, "size": "1024x1024"})):
        rsp = call()
        assert rsp.status_code == 400, rsp.text
        assert "image 1:" in rsp.text and "API key" in rsp.text
    assert edit_with(server, ref, {"Authorization": "Bearer sk-java"}).status_code == 200


def test_uploads_live_48_hours(make_server):
    server = make_server()  # its own: the purges below empty the server
    ref = java_upload(server, color=(5, 6, 7))
    path = server.settings.data_dir / "files" / "uploads" / ref[len("oss://"):]
    assert path.is_file()
    now = time.time()
    server.service.purge_expired(now=now + 25 * 3600)  # results go at 24 h, uploads stay
    assert path.is_file()
    hours_ago = lambda h: (now - h * 3600,) * 2  # noqa: E731
    os.utime(path, hours_ago(47))
    assert edit_with(server, ref).status_code == 200
    os.utime(path, hours_ago(49))  # past 48 h: refused even before the retention pass
    rsp = edit_with(server, ref)
    assert rsp.status_code == 400 and rsp.json()["message"].startswith("image 1:")
    server.service.purge_expired(now=now)
    assert not path.exists()


# ------------------------------------------------------------------ ImageSynthesis


def test_image_synthesis_ref_img_and_images_are_the_reference_images(server):
    case = fixture("image_synthesis_async_call.json")
    body = json.loads(json.dumps(case["request"]["body"]))
    body["input"].update(ref_img=data_uri(300, 300, (200, 0, 0)), images=[data_uri(400, 300, (0, 0, 200))])
    rsp = send(server, "image_synthesis_async_call.json", body=body)
    assert rsp.status_code == 200, rsp.text
    done = wait_task(server, java_output(rsp.json())["task_id"])
    assert_java_types(done, case["reads"])
    assert done["output"]["task_status"] == "SUCCEEDED" and done["output"]["results"][0]["url"]
    job = [j for j in server.engine.jobs if j.prompt == body["input"]["prompt"]][-1]
    assert [im.getpixel((1, 1)) for im in job.images] == [(200, 0, 0), (0, 0, 200)]  # ref_img first


def test_image_synthesis_inputs_wan_cannot_honour_are_refused(server):
    body = json.loads(json.dumps(fixture("image_synthesis_async_call.json")["request"]["body"]))
    body["input"] = {"prompt": "a cat", "sketch_image_url": "https://example.com/sketch.png"}
    rsp = send(server, "image_synthesis_async_call.json", body=body)
    assert rsp.status_code == 400 and rsp.json()["message"].startswith("sketch_image_url:")
