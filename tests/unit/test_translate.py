"""Chinese prompts for CLIP checkpoints (engines/diffusers/translate.py): the sd / sdxl engines get
an English prompt, translated by the thinking LLM when one is set (an OpenAI-compatible server on
loopback here) else by the preset's MarianMT model (a tiny random-weight one built in code), and
the revised prompt says what the model was given. Bilingual families get the prompt as written."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.mapped import resident_kb
from tests.support.tiny_marian import tiny_marian
from wanimage.core.job import make_job
from wanimage.core.pipeline import Pipeline
from wanimage.engines.base import no_progress
from wanimage.engines.diffusers import FAMILIES
from wanimage.engines.diffusers.config import parse_config
from wanimage.engines.diffusers.engine import DiffusersEngine
from wanimage.engines.diffusers.tiny import tiny_cpu_speedups
from wanimage.engines.diffusers.translate import (
    LlmEndpoint,
    MarianTranslator,
    has_chinese,
    reads_chinese,
)
from wanimage.engines.registry import EngineRegistry
from wanimage.types import Mode

FAST = {"steps": 1, "max_generate_pixels": 64 * 64}


@pytest.fixture(scope="module", autouse=True)
def tiny_and_fast():
    with tiny_cpu_speedups():
        yield


@pytest.fixture(scope="module")
def marian(tmp_path_factory) -> str:
    return str(tiny_marian(tmp_path_factory.mktemp("zh-en") / "opus-mt-zh-en"))


class ChatServer:
    """An OpenAI-compatible chat endpoint: answers `answer`, or HTTP `status` when set; records requests."""

    def __init__(self, answer: str = "a red apple on a wooden table", status: int = 200) -> None:
        self.answer, self.status, self.requests = answer, status, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = json.dumps({"choices": [{"message": {"content": outer.answer}}]}).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def endpoint(self) -> LlmEndpoint:
        return LlmEndpoint(f"http://127.0.0.1:{self.server.server_port}/v1", "any", None, 5.0)

    def close(self) -> None:
        self.server.shutdown()


def engine(family: str, translator: str | None = None, llm: LlmEndpoint | None = None) -> DiffusersEngine:
    raw = {"family": family, "text_to_image": f"tiny:{family}", **FAST}
    if translator:
        raw["translator"] = translator
    cfg = parse_config({"models": {"m": raw}})["m"]
    return DiffusersEngine("wan2.7-image", cfg, FAMILIES[family], llm=llm)


def spy_prompts(eng: DiffusersEngine, monkeypatch) -> list[str]:
    seen: list[str] = []
    original = eng._invoke
    monkeypatch.setattr(eng, "_invoke", lambda role, args: seen.append(args["prompt"]) or original(role, args))
    return seen


def job(prompt: str, **kw):
    return make_job("wan2.7-image", Mode.TEXT_TO_IMAGE, prompt, 64, 64, 1, 3, **kw)


@pytest.mark.parametrize("text,chinese", [("一个红苹果", True), ("a cat 坐在 a mat", True), ("夜空中的滿月", True),
                                          ("a red apple", False), ("", False), ("カタカナ only", False),
                                          ("𠀀 rare ideograph", True)])
def test_any_cjk_ideograph_counts_as_chinese(text, chinese):
    assert has_chinese(text) is chinese


def test_only_clip_families_need_a_translation():
    assert sorted(f for f in FAMILIES if not reads_chinese(f)) == ["flux", "sd", "sdxl"]


def test_the_tiny_marian_model_translates_to_target_vocabulary_deterministically(marian):
    translate = MarianTranslator(marian)
    first = translate("一只猫坐在窗台上")
    assert first and first != "一只猫坐在窗台上"  # random weights: some text of its vocabulary
    assert translate("一只猫坐在窗台上") == first  # greedy: the same prompt, the same words


def test_room_is_made_once_before_the_translator_loads(marian):
    """The engine's pipelines hand back their work buffers before the Marian model loads (the
    process's peak is not the two together), once: later prompts find it loaded."""
    made: list[bool] = []
    translate = MarianTranslator(marian, before_load=lambda: made.append(translate._model is None))
    translate("一只猫坐在窗台上")
    translate("一个红苹果")
    assert made == [True]


def test_the_translator_runs_int8_weights_and_keeps_no_weight_page_mapped(marian):
    """int8_weights: every Linear layer dynamic int8, the token embedding in 8-bit rows (one module
    where three shared the weight), every other tensor copied off the float32 file's mapping and
    the mapping's pages dropped: what a server holds after a Chinese prompt."""
    import torch

    translate = MarianTranslator(marian)
    english = translate("一只猫坐在窗台上")
    model = translate._model
    kinds = {type(module) for module in model.modules()}
    assert torch.nn.Linear not in kinds and torch.ao.nn.quantized.dynamic.Linear in kinds
    assert torch.nn.Embedding not in kinds
    tokens = model.get_encoder().embed_tokens
    assert isinstance(tokens, torch.ao.nn.quantized.Embedding) and model.get_decoder().embed_tokens is tokens
    if sys.platform.startswith("linux"):
        assert resident_kb(Path(marian) / "model.safetensors") == 0
    assert translate("一只猫坐在窗台上") == english


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_clip_engine_draws_the_marian_translation_and_reports_it(family, marian, monkeypatch):
    eng = engine(family, translator=marian)
    seen = spy_prompts(eng, monkeypatch)
    assert eng.translator.marian.before_load == eng.pool.release_buffers
    released: list[bool] = []
    monkeypatch.setattr(eng.pool, "release_buffers", lambda: released.append(eng.translator.marian._model is None))
    eng.translator.marian.before_load = eng.pool.release_buffers  # the spy in the hook's place
    registry = EngineRegistry({"wan2.7-image": lambda: eng})
    rendered = Pipeline(registry).render(job("一只猫坐在窗台上"), no_progress)
    assert released == [True]  # the pipelines made room before the Marian model loaded
    english = MarianTranslator(marian)("一只猫坐在窗台上")
    assert seen == [english] and rendered.revised_prompt == english  # what CLIP read is what the API says
    assert eng.prepare(eng.prepare(job("一只猫坐在窗台上"))).prompts == (english,)  # a translation stays as it is
    assert len(rendered.pngs) == 1


def test_the_llm_translates_first_and_marian_takes_over_when_it_fails(marian, monkeypatch):
    good, down = ChatServer("a red apple on a wooden table"), ChatServer(status=500)
    try:
        eng = engine("sd", translator=marian, llm=good.endpoint())
        seen = spy_prompts(eng, monkeypatch)
        eng.generate(job("一个红苹果 on a wooden table"), no_progress)
        assert seen == ["a red apple on a wooden table"]
        assert good.requests[0]["messages"][-1]["content"] == "一个红苹果 on a wooden table"
        assert eng.prepare(job("一个红苹果")).revised_prompt == "a red apple on a wooden table"

        fallback = engine("sd", translator=marian, llm=down.endpoint())
        assert fallback.prepare(job("一个红苹果")).prompts == (MarianTranslator(marian)("一个红苹果"),)
        assert down.requests  # it was asked first
    finally:
        good.close()
        down.close()


def test_negative_prompt_in_chinese_is_translated_too(marian):
    eng = engine("sd", translator=marian)
    prepared = eng.prepare(job("a red apple", negative_prompt="模糊"))
    assert prepared.prompts == ("a red apple",) and prepared.negative_prompt == MarianTranslator(marian)("模糊")


def test_english_prompts_and_bilingual_families_go_as_written(marian, monkeypatch):
    eng = engine("sd", translator=marian)
    assert eng.prepare(job("a red apple")) == job("a red apple")
    bilingual = engine("qwen_image")
    assert bilingual.translator is None
    seen = spy_prompts(bilingual, monkeypatch)
    rendered = Pipeline(EngineRegistry({"wan2.7-image": lambda: bilingual})).render(job("一个红苹果"), no_progress)
    assert seen == ["一个红苹果"] and rendered.revised_prompt == "一个红苹果"


def test_without_any_translator_the_prompt_goes_as_written(caplog):
    eng = engine("sd")
    assert eng.prepare(job("一个红苹果")).prompts == ("一个红苹果",)
    assert "reads English only" in caplog.text
