"""The openai backend's HTTP client against hostile servers: redirects, drips, floods, bad JSON.

Every server here is a real HTTP/1.1 server on a loopback port (``http.server`` in a thread,
TLS through ``openssl`` where the command exists), scripted per test: one that redirects to
another origin, one that drips a byte at a time, one that streams far more than the size cap,
one that answers malformed or hostile JSON. The tests check what the client sends where, that
every failure is one line, that memory and time stay bounded, and that connections are reused.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gpbench.errors import BackendError, ConfigError
from gpbench.harness.backends import Completion, Request, Sampling
from gpbench.harness.backends.openai_api import OpenAIBackend
from gpbench.serialization import to_json

KEY = "sk-test-key"
MODELS = {"object": "list", "data": [{"id": "tiny", "object": "model", "owned_by": "fake"}]}


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Loopback:
    """A scripted HTTP/1.1 server: ``route`` answers every request (see :func:`standard`)."""

    route: Callable[[Handler], None]
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    sent_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def requests(self, method: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if method is None or s.method == method]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    loop: Loopback

    def handle_error(self, request: Any, client_address: Any) -> None:
        del request, client_address  # a client that gave up and left: what these tests provoke


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn (vllm serve) speaks it
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def setup(self) -> None:
        super().setup()
        with self.server.loop.lock:
            self.server.loop.connections += 1

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        loop = self.server.loop
        with loop.lock:
            loop.seen.append(Seen(self.command, self.path, dict(self.headers), body))
        loop.route(self)

    @property
    def loop(self) -> Loopback:
        return self.server.loop


def send(
    handler: Handler, status: int, body: bytes | Any, headers: dict[str, str] | None = None
) -> None:
    """Answer with ``body`` (bytes as they are, anything else as JSON) and a Content-Length."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


def completion(text: str = "ok") -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }


def standard(handler: Handler) -> None:
    """The probes and chat completions of a well-behaved server."""
    if handler.path == "/v1/models":
        send(handler, 200, MODELS)
    elif handler.path == "/version":
        send(handler, 200, {"version": "1.2.3"})
    elif handler.command == "POST" and handler.path == "/v1/chat/completions":
        send(handler, 200, completion())
    else:
        send(handler, 404, {"error": {"message": f"no route {handler.path}"}})


def on_chat(answer: Callable[[Handler], None]) -> Callable[[Handler], None]:
    """A route that answers chat completions with ``answer`` and everything else as standard."""

    def route(handler: Handler) -> None:
        if handler.command == "POST" and handler.path == "/v1/chat/completions":
            answer(handler)
        else:
            standard(handler)

    return route


@pytest.fixture
def serve() -> Iterator[Callable[..., Loopback]]:
    """Start loopback servers: ``serve(route, tls=context)``; all stop at the end of the test."""
    running: list[tuple[_Server, Loopback]] = []

    def start(
        route: Callable[[Handler], None] = standard, tls: ssl.SSLContext | None = None
    ) -> Loopback:
        loop = Loopback(route)
        httpd = _Server(("127.0.0.1", 0), Handler)
        httpd.loop = loop
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        loop.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}/v1"
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        running.append((httpd, loop))
        return loop

    yield start
    for httpd, loop in running:
        loop.stopping.set()
        httpd.shutdown()
        httpd.server_close()


def client(url: str, **settings: Any) -> OpenAIBackend:
    """A backend that gives up at once: failures here are final by design."""
    options: dict[str, Any] = {
        "api_key": KEY,
        "max_retries": 0,
        "backoff": 0.01,
        "max_backoff": 0.05,
        "timeout": 5.0,
    }
    options.update(settings)
    return OpenAIBackend("tiny", base_url=url, **options)


def ask(backend: OpenAIBackend, n: int = 1) -> list[Completion]:
    requests = [Request([{"role": "user", "content": f"hand {i}"}], [], i, {}) for i in range(n)]
    return backend.generate(requests, Sampling(max_tokens=8))


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, text
    text.encode("utf-8")  # printable as it is: no lone surrogates
    return text


def writable(value: Any) -> None:
    """What gpbench's writers need: strict JSON (no NaN) that encodes to UTF-8."""
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")


# -- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_is_refused_and_gets_no_key(
    serve: Callable[..., Loopback], status: int
) -> None:
    elsewhere = serve()
    target = f"{elsewhere.url}/chat/completions"
    home = serve(on_chat(lambda h: send(h, status, b"", {"Location": target})))
    backend = client(home.url)
    with pytest.raises(BackendError) as caught:
        ask(backend)
    text = one_line(caught.value)
    assert target in text and "another origin" in text
    assert f"--base-url {elsewhere.url}" in text
    assert elsewhere.requests() == []  # not even without the key: the target is never contacted
    assert len(home.requests("POST")) == 1  # refused for good, not retried


def test_a_redirected_model_listing_is_refused_before_any_request(
    serve: Callable[..., Loopback],
) -> None:
    elsewhere = serve()

    def route(handler: Handler) -> None:
        if handler.path == "/v1/models":
            send(handler, 302, b"", {"Location": f"{elsewhere.url}/models"})
        else:
            standard(handler)

    home = serve(route)
    with pytest.raises(BackendError, match="another origin") as caught:
        client(home.url)
    one_line(caught.value)
    assert elsewhere.requests() == []


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_post_is_never_turned_into_a_get(serve: Callable[..., Loopback], status: int) -> None:
    def route(handler: Handler) -> None:
        if handler.path == "/v1/chat/completions":
            send(handler, status, b"", {"Location": "/v2/chat/completions"})
        elif handler.path == "/v2/chat/completions":
            send(handler, 200, completion("an answer to a request never made"))
        else:
            standard(handler)

    home = serve(route)
    backend = client(home.url)
    with pytest.raises(BackendError) as caught:
        ask(backend)
    text = one_line(caught.value)
    assert f"HTTP {status}" in text and "POST into a GET" in text
    assert "--base-url " + home.url.removesuffix("/v1") + "/v2" in text
    assert [s.path for s in home.requests() if s.path.startswith("/v2")] == []


@pytest.mark.parametrize("status", [307, 308])
def test_same_origin_307_and_308_are_followed_with_method_body_and_key(
    serve: Callable[..., Loopback], status: int
) -> None:
    def route(handler: Handler) -> None:
        if handler.path == "/v1/chat/completions":
            send(handler, status, b"moved", {"Location": "/v2/chat/completions"})
        elif handler.command == "POST" and handler.path == "/v2/chat/completions":
            send(handler, 200, completion("followed"))
        else:
            standard(handler)

    home = serve(route)
    [done] = ask(client(home.url))
    assert done.text == "followed"
    first, second = home.requests("POST")
    assert (first.path, second.path) == ("/v1/chat/completions", "/v2/chat/completions")
    assert second.body == first.body and json.loads(second.body)["seed"] == 0
    assert second.headers["Authorization"] == f"Bearer {KEY}"


def test_a_redirect_loop_ends_in_one_line(serve: Callable[..., Loopback]) -> None:
    home = serve(on_chat(lambda h: send(h, 307, b"", {"Location": "/v1/chat/completions"})))
    with pytest.raises(BackendError, match="redirected more than 5 times") as caught:
        ask(client(home.url))
    one_line(caught.value)
    assert len(home.requests("POST")) == 6


@pytest.mark.parametrize("location", ["", "http://127.0.0.1:notaport/x", "/v2/\x7fchat"])
def test_an_unusable_redirect_is_one_line(serve: Callable[..., Loopback], location: str) -> None:
    home = serve(on_chat(lambda h: send(h, 307, b"", {"Location": location} if location else {})))
    with pytest.raises(BackendError, match="redirect") as caught:
        ask(client(home.url))
    one_line(caught.value)


# -- one deadline per request ------------------------------------------------------------------


def _drip(handler: Handler, data: bytes) -> None:
    for i in range(len(data)):
        if handler.loop.stopping.wait(0.1):
            return
        handler.wfile.write(data[i : i + 1])


def _dripped_answer() -> bytes:
    body = json.dumps(completion("x" * 100)).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body  # about 300 bytes: 30 s at one byte per 0.1 s


@pytest.mark.parametrize("where", ["status line", "body"])
def test_a_dripping_server_fails_at_the_deadline(
    serve: Callable[..., Loopback], where: str
) -> None:
    answer = _dripped_answer()
    split = 0 if where == "status line" else answer.index(b"\r\n\r\n") + 4

    def drip(handler: Handler) -> None:
        handler.wfile.write(answer[:split])
        _drip(handler, answer[split:])

    home = serve(on_chat(drip))
    backend = client(home.url, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"no complete answer within 1 s") as caught:
        ask(backend)
    one_line(caught.value)
    assert time.monotonic() - started < 10  # the drip alone would take about 30 s


def test_a_deadline_timeout_is_retried_like_any_timeout(serve: Callable[..., Loopback]) -> None:
    answer = _dripped_answer()
    state = {"drips": 1}

    def first_drips(handler: Handler) -> None:
        with handler.loop.lock:
            drip, state["drips"] = state["drips"] > 0, state["drips"] - 1
        if drip:
            _drip(handler, answer)
        else:
            send(handler, 200, completion("second try"))

    home = serve(on_chat(first_drips))
    [done] = ask(client(home.url, timeout=1.0, max_retries=1))
    assert done.text == "second try"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _tls_server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_tls_answers_and_a_dripping_tls_server_fails_at_the_deadline(
    serve: Callable[..., Loopback], certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the client trusts the test CA
    answer = _dripped_answer()
    split = answer.index(b"\r\n\r\n") + 4
    state = {"n": 0}

    def second_drips(handler: Handler) -> None:
        state["n"] += 1
        if state["n"] == 1:
            send(handler, 200, completion("over tls"))
            return
        handler.wfile.write(answer[:split])
        _drip(handler, answer[split:])

    home = serve(on_chat(second_drips), tls=_tls_server_context(certificate))
    assert home.url.startswith("https://")
    backend = client(home.url, timeout=1.0)
    assert [c.text for c in ask(backend)] == ["over tls"]
    started = time.monotonic()
    with pytest.raises(BackendError, match="no complete answer within 1 s") as caught:
        ask(backend)
    one_line(caught.value)
    assert time.monotonic() - started < 10


def test_an_untrusted_tls_certificate_is_one_line(
    serve: Callable[..., Loopback], certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    home = serve(tls=_tls_server_context(certificate))
    with pytest.raises(BackendError, match="cannot connect") as caught:
        client(home.url)
    one_line(caught.value)


# -- bounded answers ----------------------------------------------------------------------------

CAP = 1 << 20  # the size cap these tests set: 1 MiB
FLOOD = 64 * CAP  # what the flooding server would send: 64 MiB, never held in memory at once
_CHUNK = b'{"pad": "' + b"x" * 65514 + b'"}\n'  # 64 KiB, made once and sent again and again


def _flood(handler: Handler, framing: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    if framing == "content-length":
        handler.send_header("Content-Length", str(FLOOD))
    elif framing == "chunked":
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Connection", "close")
    handler.end_headers()
    for _ in range(FLOOD // len(_CHUNK)):
        if handler.loop.stopping.is_set():
            return
        if framing == "chunked":
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK))
        else:
            handler.wfile.write(_CHUNK)
        with handler.loop.lock:
            handler.loop.sent_bytes += len(_CHUNK)
    if framing == "chunked":
        handler.wfile.write(b"0\r\n\r\n")
    handler.close_connection = True


def _peak_memory(call: Callable[[], Any]) -> int:
    """The most memory Python held while ``call`` ran (every thread, the server's included)."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
def test_an_oversized_answer_is_refused_in_bounded_memory(
    serve: Callable[..., Loopback], framing: str
) -> None:
    home = serve(on_chat(lambda h: _flood(h, framing)))
    backend = client(home.url, max_response_bytes=CAP)
    caught: list[BaseException] = []

    def call() -> None:
        try:
            ask(backend)
        except BackendError as exc:
            caught.append(exc)

    peak = _peak_memory(call)
    [error] = caught
    text = one_line(error)
    assert f"more than {CAP} bytes" in text and "max_response_bytes" in text
    assert peak < 8 * CAP, peak  # the whole answer would be 64 MiB
    assert home.sent_bytes < FLOOD


def test_an_answer_at_the_cap_is_accepted(serve: Callable[..., Loopback]) -> None:
    body = json.dumps(completion("y")).encode()
    padded = body[:-1] + b', "pad": "' + b"z" * (CAP - len(body) - 11) + b'"}'
    assert len(padded) == CAP
    home = serve(on_chat(lambda h: send(h, 200, padded)))
    assert [c.text for c in ask(client(home.url, max_response_bytes=CAP))] == ["y"]
    too_big = padded[:-2] + b'z"}'
    home.route = on_chat(lambda h: send(h, 200, too_big))
    with pytest.raises(BackendError, match=f"more than {CAP} bytes"):
        ask(client(home.url, max_response_bytes=CAP))


def test_an_oversized_error_answer_is_cut_to_its_message(serve: Callable[..., Loopback]) -> None:
    def huge_error(handler: Handler) -> None:
        handler.send_response(400)
        handler.send_header("Content-Length", str(FLOOD))
        handler.end_headers()
        handler.wfile.write(b"the prompt is too long " * 10)
        for _ in range(FLOOD // len(_CHUNK)):
            if handler.loop.stopping.is_set():
                return
            handler.wfile.write(_CHUNK)

    home = serve(on_chat(huge_error))
    backend = client(home.url, max_response_bytes=CAP)
    caught: list[BaseException] = []

    def call() -> None:
        try:
            ask(backend)
        except BackendError as exc:
            caught.append(exc)

    peak = _peak_memory(call)
    [error] = caught
    assert "HTTP 400: the prompt is too long" in one_line(error)
    assert peak < 8 * CAP, peak


def test_the_probes_are_bounded_too(serve: Callable[..., Loopback]) -> None:
    def flood_listing(handler: Handler) -> None:
        if handler.path == "/v1/models":
            _flood(handler, "chunked")
        else:
            standard(handler)

    home = serve(flood_listing)
    with pytest.raises(BackendError, match=f"more than {CAP} bytes") as caught:
        client(home.url, max_response_bytes=CAP)
    one_line(caught.value)

    def flood_version(handler: Handler) -> None:
        if handler.path == "/version":
            _flood(handler, "content-length")
        else:
            standard(handler)

    home = serve(flood_version)
    backend = client(home.url, max_response_bytes=CAP)
    assert backend.server_version is None  # the version is optional: an unusable one is absent


def test_an_answer_cut_short_is_a_lost_connection(serve: Callable[..., Loopback]) -> None:
    def short(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b'{"choices": [')  # then the server goes away
        handler.close_connection = True

    home = serve(on_chat(short))
    with pytest.raises(BackendError, match=r"failed 2 times .*connection lost") as caught:
        ask(client(home.url, max_retries=1))
    one_line(caught.value)
    assert len(home.requests("POST")) == 2  # retried like any lost connection


def test_size_cap_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_response_bytes must be >= 1024"):
        OpenAIBackend("tiny", base_url="http://127.0.0.1:9/v1", max_response_bytes=10)


# -- connections --------------------------------------------------------------------------------


def test_connections_are_reused_across_requests_and_batches(
    serve: Callable[..., Loopback],
) -> None:
    home = serve()
    backend = client(home.url, concurrency=4)
    for _ in range(5):
        assert len(ask(backend, 12)) == 12
    assert len(home.requests("POST")) == 60
    # One connection for the probes, reused; at most `concurrency` at once for the batches.
    assert 1 <= home.connections <= 4
    backend.close()


def test_a_connection_the_server_dropped_is_replaced_without_a_retry(
    serve: Callable[..., Loopback],
) -> None:
    def answer_then_hang_up(handler: Handler) -> None:
        # Keep-alive by the protocol, then closed: what an idle timeout does to a pooled
        # connection between two requests.
        send(handler, 200, completion(f"answer {len(handler.loop.requests('POST'))}"))
        handler.close_connection = True

    home = serve(on_chat(answer_then_hang_up))
    backend = client(home.url, max_retries=0, concurrency=1)
    texts = [c.text for _ in range(3) for c in ask(backend)]
    assert texts == ["answer 1", "answer 2", "answer 3"]
    assert len(home.requests("POST")) == 3  # every request reached the server exactly once


# -- hostile JSON -------------------------------------------------------------------------------

_CONTENT = b'{"choices": [{"message": {"content": %s}, "finish_reason": %s}], "usage": %s}'


def _chat(content: bytes = b'"24"', finish: bytes = b'"stop"', usage: bytes = b"{}") -> bytes:
    return _CONTENT % (content, finish, usage)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 100_000, "not JSON"),
        (b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not JSON"),
        (_chat(usage=b'{"prompt_tokens": 1' + b"0" * 5000 + b"}"), "not JSON"),
        (b"\xff\xfe\xfd not text", "not JSON"),
        (_chat(content=b'"\xff\xfe"'), "not JSON"),
        (b"", "not JSON"),
        (b"<html>busy</html>", "not JSON"),
        (b"[]", "exactly one choice"),
        (b'"a string"', "exactly one choice"),
        (b"null", "exactly one choice"),
        (b"{}", "exactly one choice"),
        (b'{"choices": []}', "exactly one choice"),
        (b'{"choices": [{}, {}]}', "exactly one choice"),
        (b'{"choices": ["text"]}', "exactly one choice"),
        (b'{"choices": [{"message": null}]}', "without a message"),
        (b'{"choices": [{"text": "24"}]}', "without a message"),
        (_chat(content=b"24"), "content is not text"),
        (_chat(content=b'["24"]'), "content is not text"),
        (_chat(content=b'{"text": "24"}'), "content is not text"),
    ],
)
def test_malformed_answers_are_one_line_errors(
    serve: Callable[..., Loopback], body: bytes, why: str
) -> None:
    home = serve(on_chat(lambda h: send(h, 200, body)))
    with pytest.raises(BackendError, match=why) as caught:
        ask(client(home.url))
    one_line(caught.value)


@pytest.mark.parametrize(
    ("body", "text", "reason", "counts"),
    [
        (_chat(content=b'"a\\ud800b"'), "a\ud800b", "stop", (None, None)),
        (_chat(content=b'"\\udfff"'), "\udfff", "stop", (None, None)),
        (_chat(content=b'"\\ud83d\\ude00 \\u0000\\u001b"'), "\U0001f600 \x00\x1b", "stop", None),
        (_chat(content=b"null"), "", "stop", None),
        (_chat(finish=b'{"why": "length"}'), "24", "stop", None),
        (_chat(finish=b'"length"'), "24", "length", None),
        (_chat(usage=b'{"prompt_tokens": NaN, "completion_tokens": 1e400}'), "24", "stop", None),
        (_chat(usage=b'{"prompt_tokens": -3, "completion_tokens": "5"}'), "24", "stop", None),
        (_chat(usage=b'{"prompt_tokens": true, "completion_tokens": 1e3}'), "24", "stop", None),
        (_chat(usage=b'{"prompt_tokens": 12345678901234567890123}'), "24", "stop", None),
        (_chat(usage=b'"lots"'), "24", "stop", None),
        (_chat(usage=b'{"prompt_tokens": 7, "completion_tokens": 3}'), "24", "stop", (7, 3)),
    ],
)
def test_odd_answers_are_kept_verbatim_and_writable(
    serve: Callable[..., Loopback],
    body: bytes,
    text: str,
    reason: str,
    counts: tuple[int | None, int | None] | None,
) -> None:
    home = serve(on_chat(lambda h: send(h, 200, body)))
    [done] = ask(client(home.url))
    assert (done.text, done.finish_reason) == (text, reason)
    assert (done.prompt_tokens, done.completion_tokens) == (counts or (None, None))
    line = to_json({"response": done.text, "tokens": [done.prompt_tokens, done.completion_tokens]})
    line.encode("utf-8")  # what the episode writer does with it
    assert json.loads(line)["response"] == text


def test_hostile_error_messages_stay_one_printable_line(serve: Callable[..., Loopback]) -> None:
    message = '{"error": {"message": "bad \\ud800 \\u001b[2J\\u001b]0;pwned\\u0007 prompt\\n!"}}'
    home = serve(on_chat(lambda h: send(h, 400, message.encode())))
    backend = client(home.url)
    with pytest.raises(BackendError) as caught:
        ask(backend)
    text = one_line(caught.value)
    assert "\x1b" not in text and "\x07" not in text and "bad \ufffd" in text
    home.route = on_chat(lambda h: send(h, 400, b'{"error": ' + b"[" * 100_000))
    with pytest.raises(BackendError, match="HTTP 400") as caught:
        ask(backend)
    one_line(caught.value)


def test_a_hostile_model_card_and_version_are_recorded_safely(
    serve: Callable[..., Loopback],
) -> None:
    card = (
        b'{"id": "tiny", "object": "model", "root": "/srv/\\ud800tiny", "owned_by": 1e400,'
        b' "max_model_len": NaN, "parent": {"deep": [[[[1]]]]}, "created": 1' + b"0" * 30 + b","
        b' "permission": [{"id": "modelperm-1", "created": 5}]}'
    )
    listing = b'{"object": "list", "data": [7, "x", {"id": 3}, ' + card + b"]}"
    version = b'{"version": "1.2.3", "build": {"nested": 1}, "\\udc80": "x", "x": Infinity}'

    def route(handler: Handler) -> None:
        if handler.path == "/v1/models":
            send(handler, 200, listing)
        elif handler.path == "/version":
            send(handler, 200, version)
        else:
            standard(handler)

    backend = client(serve(route).url)
    info, identity = backend.describe(), backend.identity()
    writable(info)
    writable(identity)
    assert info["server_models"] == ["tiny"]
    assert info["server_model"] == {"id": "tiny", "object": "model", "root": "/srv/\ufffdtiny"}
    assert identity["model_card"] == {"id": "tiny", "object": "model", "root": "/srv/\ufffdtiny"}
    assert identity["server_version"] == {"version": "1.2.3", "\ufffd": "x"}


# -- what the backend is, for the run key ------------------------------------------------------


def test_identity_names_the_server_the_card_and_the_version(
    serve: Callable[..., Loopback],
) -> None:
    card = {
        "id": "tiny",
        "object": "model",
        "created": 1700000000,
        "owned_by": "vllm",
        "root": "/ckpt/tiny",
        "parent": None,
        "max_model_len": 2048,
        "permission": [{"id": "modelperm-random", "created": 1700000000}],
    }

    def route(handler: Handler) -> None:
        if handler.path == "/v1/models":
            send(handler, 200, {"object": "list", "data": [card]})
        else:
            standard(handler)

    home = serve(route)
    port = home.url.split(":")[2].split("/")[0]
    backend = client(f" HTTP://127.0.0.1:{port}/v1/ ")
    identity = backend.identity()
    assert identity == {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "model_card": {
            "id": "tiny",
            "object": "model",
            "owned_by": "vllm",
            "root": "/ckpt/tiny",
            "parent": None,
            "max_model_len": 2048,
        },
        "server_version": {"version": "1.2.3"},
    }
    writable(identity)
    assert KEY not in json.dumps(identity)
    assert backend.describe()["server_model"]["created"] == 1700000000  # recorded, not keyed


@pytest.mark.parametrize(
    ("base_url", "normal"),
    [
        ("http://localhost:80/v1/", "http://localhost/v1"),
        ("https://API.Example.com:443/v1", "https://api.example.com/v1"),
        ("https://api.example.com:8443", "https://api.example.com:8443"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("http://host/a b/v1", "http://host/a%20b/v1"),
        ("http://host/caf\udce9/v1", "http://host/caf%E9/v1"),  # an undecodable argv byte
        ("http://bücher.example/v1", "http://xn--bcher-kva.example/v1"),
    ],
)
def test_base_url_is_normalised(base_url: str, normal: str) -> None:
    from gpbench.harness.backends.openai_api import normalise_base_url

    assert normalise_base_url(base_url) == normal


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://user:secret@localhost:8000/v1", "credentials"),
        ("http://token@localhost:8000/v1", "credentials"),
        ("http://localhost:8000/v1?api-version=1", "query"),
        ("http://localhost:8000/v1#x", "query"),
        ("http://localhost:99999/v1", "port"),
        ("ftp://localhost/v1", "http"),
        ("localhost:8000", "http"),
        ("http://a..b/v1", "host name"),
        ("http://\udce9.example/v1", "host name"),
    ],
)
def test_unusable_base_urls_are_refused(base_url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        OpenAIBackend("tiny", base_url=base_url)
    assert "secret" not in one_line(caught.value)


@pytest.mark.parametrize("key", ["sk-1\r\nX-Injected: 1", "sk é", "sk 1"])
def test_an_api_key_that_is_not_one_header_token_is_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="API key") as caught:
        OpenAIBackend("tiny", base_url="http://127.0.0.1:9/v1", api_key=key)
    assert key not in one_line(caught.value)


def test_size_cap_reaches_the_backend_through_backend_opt(
    serve: Callable[..., Loopback],
) -> None:
    from gpbench.harness.backends import create_backend

    home = serve()
    backend = create_backend("openai", "tiny", base_url=home.url, max_response_bytes="4096")
    assert backend.describe()["max_response_bytes"] == 4096
