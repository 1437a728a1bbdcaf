"""The sandbox served in-process (a thread), and the three real SDKs pointed at it."""

from __future__ import annotations

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import types

from orchestrator.core.catalog import Catalog
from sandbox.background import BackgroundSandbox


@pytest.fixture(scope="module")
def sandbox():
    with BackgroundSandbox(Catalog.load(), latency_scale=0) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_sandbox(request):
    if "sandbox" in request.fixturenames:
        sandbox = request.getfixturevalue("sandbox")
        requests.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def oai(sandbox):
    return openai.OpenAI(base_url=f"{sandbox.url}/v1", api_key="sandbox", max_retries=0, timeout=10)


@pytest.fixture(scope="module")
def claude(sandbox):
    return anthropic.Anthropic(base_url=sandbox.url, api_key="sandbox", max_retries=0, timeout=10)


@pytest.fixture(scope="module")
def gemini(sandbox):
    return genai.Client(api_key="sandbox", http_options=types.HttpOptions(base_url=sandbox.url, timeout=10_000))
