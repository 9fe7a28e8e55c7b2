"""One call to an OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, a hosted API).

Two layers use the same LLM: thinking mode plans pictures with it (thinking/llm.py) and the
diffusers engine translates Chinese prompts for CLIP checkpoints with it
(engines/diffusers/translate.py). Neither layer may import the other, so the wire call lives
here, beside types.py, with nothing of either layer in it."""

from __future__ import annotations

import httpx


class LlmFailure(Exception):
    """Why the LLM's answer was not used; the message goes to the log."""


def chat_url(url: str) -> str:
    """A base URL (http://host:11434/v1) or the full .../chat/completions URL."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def chat(url: str, model: str, messages: list[dict], *, timeout: float, key: str | None = None,
         client: httpx.Client | None = None) -> str:
    """The text of the first choice, temperature 0 (the same prompt, the same answer where the
    server allows). `client` reuses a connection pool (and its headers: then `key` is not sent
    again). Raises LlmFailure on a timeout, an HTTP error, a non-200 answer or a malformed body."""
    body = {"model": model, "temperature": 0, "messages": messages}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        if client is not None:
            resp = client.post(chat_url(url), json=body, headers=headers, timeout=timeout)
        else:
            resp = httpx.post(chat_url(url), json=body, headers=headers, timeout=timeout, trust_env=False)
    except httpx.TimeoutException:
        raise LlmFailure(f"timeout after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise LlmFailure(f"HTTP error: {type(exc).__name__}: {exc}") from None
    if resp.status_code != 200:
        raise LlmFailure(f"HTTP {resp.status_code}: {resp.text[:120]!r}")
    try:
        content = resp.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LlmFailure(f"malformed chat response: {resp.text[:80]!r}") from None
    if not isinstance(content, str):
        raise LlmFailure("malformed chat response: message content is not text")
    return content
