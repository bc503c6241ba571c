"""The OpenAI-compatible backend: chat completions from a server (``vllm serve``, or any other).

Use:
    ``gpbench eval --backend openai --base-url http://localhost:8000/v1 --model NAME``, where
    NAME is a model the server serves (for ``vllm serve ckpt/`` that is ``ckpt/`` as typed, or
    its ``--served-model-name``). The API key comes from ``--api-key`` (``api_key=``), else the
    ``OPENAI_API_KEY`` variable, else ``EMPTY`` (what ``vllm serve`` expects without ``--api-key``).
    The base URL may not hold credentials (``user:password@``), a query or a fragment; it is
    normalised (lower-case scheme and host, no default port, no trailing slash).

Requests:
    ``POST {base_url}/chat/completions``: the conversation, ``max_tokens``, ``temperature``,
    ``top_p`` and the request's own ``seed``, ``n`` 1. The server applies its chat template.
    Image parts become ``image_url`` parts holding base64 PNG data URLs. Up to ``concurrency``
    requests are in flight at once (a thread pool: the server batches them) over keep-alive
    HTTP/1.1 connections kept in a pool (at most ``concurrency`` + 1 idle ones), so a run opens
    about ``concurrency`` connections in all, not one per request. A pooled connection the
    server has closed meanwhile (an idle timeout) is replaced by a new one at once, without
    counting as a retry. ``finish_reason`` ``length`` stays ``length``; every other reason
    (``stop``, ``content_filter``, ...) is ``stop``. Knobs the OpenAI API lacks (top_k,
    repetition penalty) are left to the server's defaults; for ``vllm serve`` those come from the
    checkpoint's generation_config unless the server is started with ``--generation-config vllm``.

Redirects:
    Followed only when they keep everything: a 307 or 308 to the same origin (scheme, host and
    port), which by definition repeats the same method and body, up to 5 in a row. Anything else
    is a one-line error naming the target, telling to point ``--base-url`` at the final address:
    a redirect to another origin (following it would hand that server the API key, so it is
    never contacted), and a 301, 302 or 303 (clients turn those POSTs into GETs, which would
    drop the conversation).

Bounds:
    ``timeout`` is one deadline for the whole request: connecting, the TLS handshake, sending,
    and every read of the status line, headers and body, redirects included, so a server that
    drips a byte a second fails at the deadline like one that says nothing. (Name resolution is
    the operating system's and not bounded by it; a server given by IP address or ``localhost``
    needs none.) A successful answer may hold at most ``max_response_bytes`` (32 MiB; a chat
    answer is kilobytes): the body is read in 64 KiB chunks and refused as soon as it passes the
    cap, so memory stays bounded whatever the server sends; an error answer's body is cut to its
    first 64 KiB (only its message is shown). The same bounds hold for the ``/v1/models`` and
    ``/version`` probes.

Answers:
    Server data is hostile: a body that is not JSON gpbench can read (not UTF-8, nested too
    deeply, a number of more than 4,300 digits), a reply without exactly one choice holding a
    message, or content that is neither text nor null is a one-line error. The text is kept
    verbatim, a lone UTF-16 surrogate (``"\\ud800"``) included: gpbench's record writer stores
    it as its JSON escape. Token counts that are not integers in [0, 2**53] are dropped. What
    goes to run.json from the model card and ``/version`` is plain values only (strings up to
    4,096 characters, finite numbers, 64-bit integers), a lone surrogate there replaced by
    U+FFFD. Server text quoted in error messages is put on one line, control characters and
    lone surrogates replaced, so it can neither fail to print nor rewrite the user's terminal.

Failures:
    A connection error, a timeout, a 408, 409, 429 or 5xx answer is retried up to
    ``max_retries`` times, waiting ``backoff`` seconds and doubling each time (at most
    ``max_backoff``; a ``Retry-After`` header is honoured within that). Then the whole batch
    fails with a one-line :class:`~gpbench.errors.BackendError`; episodes that finished in earlier
    turns are already on disk, so re-running the same command resumes the run. Other answers
    (400, 401, 404, a refused redirect, an oversized or malformed answer, a TLS certificate that
    does not verify) fail at once with what was wrong.

Recorded in run.json:
    the base URL, the model, the server's model card (``/v1/models``: id, object, created,
    owned_by, root, parent, max_model_len, where they are plain values) and version
    (``/version`` on ``vllm serve``), and the client settings; never the API key.
    :meth:`OpenAIBackend.identity` is the part of that which decides the answers.

Settings:
    ``base_url`` (required), ``api_key``, ``concurrency`` (8), ``timeout`` (600 s for a whole
    request, see Bounds), ``max_retries`` (5), ``backoff`` (1 s), ``max_backoff`` (30 s),
    ``max_response_bytes`` (32 MiB), ``images`` (False: set True when the served model reads
    images, so vision tasks are run). ``batch_size`` is accepted and ignored.

TLS and proxies:
    ``https`` URLs are verified against the system's certificates (``SSL_CERT_FILE`` names
    another bundle, e.g. a private CA's). The client connects directly: ``HTTP_PROXY`` and
    ``HTTPS_PROXY`` are not used.

Why the standard library and not ``httpx`` or the ``openai`` package: the protocol here is one
JSON POST and two GETs, and neither client bounds a whole request by one deadline (their
timeouts restart at every read, so a drip never ends); with ``http.client`` over sockets that
end each operation by the request's deadline, the deadline, the size cap, the redirect policy,
the retries and the error messages are gpbench's own and tested as such, with nothing to install.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import math
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import gpbench
from gpbench.errors import BackendError, ConfigError, did_you_mean, one_line
from gpbench.harness.backends import Completion, Request, Sampling
from gpbench.serialization import parse_json

DEFAULT_API_KEY = "EMPTY"
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
FOLLOWED_REDIRECTS = frozenset({307, 308})  # the ones that keep the method and the body
MAX_REDIRECTS = 5
_MIN_RESPONSE_BYTES = 1024
_ERROR_BODY_LIMIT = 64 * 1024  # an error answer is read this far: its message is all we show
_READ_CHUNK = 64 * 1024
_IMAGE_CACHE_LIMIT = 256  # encoded images kept (episodes resend their images every turn)
_ERROR_TEXT_LIMIT = 300
_LISTED_MODELS = 100  # model ids kept for run.json
_FIELD_TEXT_LIMIT = 4096  # a model card's or version's string longer than this is dropped
_VERSION_FIELDS = 32
# The model card's fields worth recording. `created` is recorded but not part of identity():
# vLLM fills it with the time of the /v1/models request. `permission` is left out: vLLM makes
# a random id for it on every request.
_CARD_FIELDS = ("id", "object", "created", "owned_by", "root", "parent", "max_model_len")
_UNSTABLE_CARD_FIELDS = frozenset({"created"})
_MAX_COUNT = 2**53  # token counts above this are not counts
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_T = TypeVar("_T")
_RESUME = (
    "episodes already finished are saved: when the server is back, re-run the same command to "
    "resume"
)
_START = "is the server running? (e.g. vllm serve CHECKPOINT --port 8000)"


class _TransientError(Exception):
    """A failure worth retrying (connection, timeout, overload), with the server's hint."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _StoppedError(Exception):
    """Another request of the batch failed for good; this one gives up without retrying."""


class _NotFoundError(BackendError):
    """A 404: the endpoint (or the model) is not on this server."""


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 600.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        images: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0 or max_backoff < 0:
            raise ConfigError(f"backoff and max_backoff must be >= 0, got {backoff}, {max_backoff}")
        if max_response_bytes < _MIN_RESPONSE_BYTES:
            raise ConfigError(
                f"max_response_bytes must be >= {_MIN_RESPONSE_BYTES}, got {max_response_bytes}"
            )
        self.model = model
        self.base_url = normalise_base_url(base_url)
        key = api_key or os.environ.get("OPENAI_API_KEY") or DEFAULT_API_KEY
        _check_api_key(key, "--api-key" if api_key else "OPENAI_API_KEY")
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_response_bytes = max_response_bytes
        self.supports_images = images
        self._images: dict[int, tuple[Any, str]] = {}
        self._images_lock = threading.Lock()
        self._closed = False
        self._transport = _Transport(
            self.base_url,
            headers={
                "Authorization": f"Bearer {key}",
                "Accept": "application/json",
                "User-Agent": f"gpbench/{gpbench.__version__}",
            },
            timeout=self.timeout,
            max_bytes=max_response_bytes,
            idle=concurrency + 1,
        )
        try:
            self.server_models, self.server_model = self._models()
            self.server_version = self._version()
        except BaseException:
            self._transport.close()
            raise

    # -- protocol ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        """One completion per request, in order; up to ``concurrency`` requests in flight."""
        if self._closed:
            raise BackendError("openai backend: generate() after close()")
        if not requests:
            return []
        started = time.perf_counter()
        answers: list[tuple[str, str, int | None, int | None] | None] = [None] * len(requests)
        errors: list[BaseException] = []
        stop = threading.Event()  # the batch has failed: no new requests, no more retries
        finished = threading.Event()  # every worker is done, or the batch has failed
        lock = threading.Lock()
        pending = iter(range(len(requests)))
        workers = min(self.concurrency, len(requests))
        alive = [workers]

        def work() -> None:
            try:
                while not stop.is_set():
                    with lock:
                        index = next(pending, None)
                    if index is None:
                        return
                    try:
                        answers[index] = self._answer(requests[index], sampling, stop)
                    except BaseException as exc:  # handed to the caller's thread below
                        with lock:
                            errors.append(exc)
                        stop.set()
                        finished.set()
                        return
            finally:
                with lock:
                    alive[0] -= 1
                    if alive[0] == 0:
                        finished.set()

        # Daemon threads, and no waiting for stragglers once the batch has failed: requests
        # still hanging on a dead server must not hold up the error (nor, after Ctrl-C, the
        # process's exit); they end at their deadline and are dropped.
        for i in range(workers):
            threading.Thread(target=work, name=f"gpbench-openai-{i}", daemon=True).start()
        try:
            finished.wait()
        except BaseException:
            stop.set()
            raise
        real = [error for error in errors if not isinstance(error, _StoppedError)]
        if real:
            raise real[0]
        latency = time.perf_counter() - started
        return [
            Completion(text, reason, prompt, completion, latency)
            for text, reason, prompt, completion in (a for a in answers if a is not None)
        ]

    def describe(self) -> dict[str, Any]:
        """The server, its model and version, and the client settings (never the API key)."""
        return {
            "backend": self.name,
            "model": self.model,
            "base_url": self.base_url,
            "server_model": self.server_model,
            "server_models": self.server_models,
            "server_version": self.server_version,
            "supports_images": self.supports_images,
            "chat_template": "applied by the server",
            "concurrency": self.concurrency,
            "timeout_s": self.timeout,
            "max_retries": self.max_retries,
            "backoff_s": self.backoff,
            "max_backoff_s": self.max_backoff,
            "max_response_bytes": self.max_response_bytes,
        }

    def identity(self) -> dict[str, Any]:
        """What decides this backend's answers beyond the checkpoint, as JSON-able data.

        ``base_url``: the normalised base URL (it never holds credentials: they are refused).
        ``model_card``: the server's ``/v1/models`` entry for the model (id, object, owned_by,
        root, parent, max_model_len where present as plain values; not ``created``, which vLLM
        sets to the time of the listing, nor ``permission``, whose ids vLLM draws at random),
        or None when the server lists no models. ``server_version``: the plain fields of
        ``/version`` (``{"version": "0.11.0"}`` on ``vllm serve``), or None where it has none.
        Client settings (concurrency, timeouts, retries) are not in it: they never change an
        answer.
        """
        card = self.server_model
        return {
            "base_url": self.base_url,
            "model_card": None
            if card is None
            else {k: v for k, v in card.items() if k not in _UNSTABLE_CARD_FIELDS},
            "server_version": self.server_version,
        }

    def close(self) -> None:
        """Forget cached images and close the idle connections; the server keeps running."""
        self._closed = True
        with self._images_lock:
            self._images.clear()
        self._transport.close()

    # -- requests ---------------------------------------------------------------------------

    def _answer(
        self, request: Request, sampling: Sampling, stop: threading.Event
    ) -> tuple[str, str, int | None, int | None]:
        body = {
            "model": self.model,
            "messages": self._messages(request),
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": 1.0 if sampling.greedy else sampling.top_p,
            "seed": request.seed,
            "n": 1,
            "stream": False,
        }
        url = f"{self.base_url}/chat/completions"
        reply = self._retrying(
            "a chat completion", lambda: self._call("POST", url, body), stop, _RESUME
        )
        text, raw_reason, usage = _chat_choice(_decode_json(reply), reply)
        reason = "length" if raw_reason == "length" else "stop"
        return text, reason, _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")

    def _messages(self, request: Request) -> list[dict[str, Any]]:
        images = iter(request.images)
        converted: list[dict[str, Any]] = []
        for message in request.messages:
            content = message["content"]
            if isinstance(content, str):
                converted.append({"role": message["role"], "content": content})
                continue
            parts: list[dict[str, Any]] = []
            for part in content:
                if part.get("type") == "image":
                    image = next(images, None)
                    if image is None:
                        raise BackendError(
                            "openai backend: a message has more image parts than the request "
                            "has images"
                        )
                    parts.append({"type": "image_url", "image_url": {"url": self._data_url(image)}})
                else:
                    parts.append({"type": "text", "text": str(part.get("text", ""))})
            converted.append({"role": message["role"], "content": parts})
        return converted

    def _data_url(self, image: Any) -> str:
        """A base64 PNG data URL, cached per image object: multi-turn episodes resend their
        images every turn, and encoding a large PNG costs tens of milliseconds."""
        key = id(image)
        with self._images_lock:
            cached = self._images.get(key)
        if cached is not None and cached[0] is image:
            return cached[1]
        if isinstance(image, bytes):
            data = image
        else:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            data = buffer.getvalue()
        url = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        with self._images_lock:
            if len(self._images) >= _IMAGE_CACHE_LIMIT:
                self._images.clear()
            # The image itself is kept with its URL so that its id cannot be reused meanwhile.
            self._images[key] = (image, url)
        return url

    # -- server information -----------------------------------------------------------------

    def _models(self) -> tuple[list[str] | None, dict[str, Any] | None]:
        """The served model ids and this model's card; None where the server has no /models."""
        url = f"{self.base_url}/models"
        try:
            reply = self._retrying("listing models", lambda: self._call("GET", url), None, _START)
        except _NotFoundError:
            return None, None
        listing = _decode_json(reply)
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            return None, None  # not the OpenAI shape: nothing to check the model against
        cards = [c for c in listing["data"] if isinstance(c, dict) and isinstance(c.get("id"), str)]
        ids = [_clean(card["id"]) for card in cards]
        card = next((c for c in cards if c["id"] == self.model), None)
        if ids and card is None:
            shown = ", ".join(_snippet(i) for i in ids[:10])
            more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
            raise ConfigError(
                f"the server at {self.base_url} serves {shown}{more}, not "
                f"{self.model!r}{did_you_mean(self.model, ids[:1000])}; pass --model {_snippet(ids[0])}"
            )
        return ids[:_LISTED_MODELS], None if card is None else _plain_fields(card, _CARD_FIELDS)

    def _version(self) -> dict[str, Any] | None:
        """``/version`` at the server's root (``vllm serve`` has it; others may not): its
        plain fields, or None where there is no usable answer (it is only recorded)."""
        root = self.base_url.removesuffix("/v1")
        try:
            answer = _decode_json(self._call("GET", f"{root}/version"))
        except (_TransientError, BackendError):
            return None
        if isinstance(answer, dict):
            keys = [k for k in answer if isinstance(k, str)][:_VERSION_FIELDS]
            fields = _plain_fields(answer, keys)
            return fields or None
        value = _plain(answer)
        return None if value is _DROP or value is None else {"version": value}

    # -- HTTP -------------------------------------------------------------------------------

    def _retrying(
        self, what: str, call: Callable[[], _T], stop: threading.Event | None, hint: str
    ) -> _T:
        """``call()``, retried with exponential backoff while it fails transiently; then a
        one-line BackendError ending with ``hint``."""
        delay = self.backoff
        started = time.monotonic()
        attempts = 0
        while True:
            if stop is not None and stop.is_set():
                raise _StoppedError
            attempts += 1
            try:
                return call()
            except _TransientError as exc:
                last = exc
            if attempts > self.max_retries:
                break
            pause = min(max(delay, last.retry_after or 0.0), self.max_backoff)
            if stop is not None:
                if stop.wait(pause):
                    raise _StoppedError
            else:
                time.sleep(pause)
            delay *= 2
        elapsed = time.monotonic() - started
        raise BackendError(
            f"openai backend: {what} at {self.base_url} failed {attempts} times in "
            f"{elapsed:.1f} s (last: {last}); {hint}"
        )

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> _Reply:
        """One request; a 2xx reply is returned, any other status raised as its error."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        reply = self._transport.request(method, url, data)
        if not 200 <= reply.status < 300:
            raise _status_error(reply)
        return reply


# -- the transport: pooled connections, one deadline per request, bounded bodies ---------------


@dataclass(frozen=True)
class _Reply:
    """A complete HTTP answer: its status, headers, body, and the address that gave it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str


class _Transport:
    """HTTP/1.1 to one origin: pooled keep-alive connections, every request bounded by one
    deadline, answers bounded in size, redirects followed only within the origin and only when
    they keep the method (see the module docstring)."""

    def __init__(
        self, base_url: str, *, headers: dict[str, str], timeout: float, max_bytes: int, idle: int
    ) -> None:
        self.base_url = base_url
        self.origin = _origin(base_url)
        self.headers = headers
        self.timeout = timeout
        self.max_bytes = max_bytes
        scheme, host, port = self.origin
        tls = _tls_context() if scheme == "https" else None
        self._pool = _Pool(lambda: _Connection(host, port, tls), idle)

    def request(self, method: str, url: str, body: bytes | None) -> _Reply:
        """``method url`` with ``body``, following same-origin 307/308 redirects.

        Raises:
            _TransientError: cannot connect, connection lost, or the deadline passed.
            BackendError: a redirect it will not follow, an answer over the size cap, a TLS
                certificate that does not verify.
        """
        deadline = time.monotonic() + self.timeout
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._exchange(method, url, body, deadline)
            if reply.status not in REDIRECT_STATUSES:
                return reply
            url = self._redirect_target(method, reply)
        raise BackendError(
            f"openai backend: {url} redirected more than {MAX_REDIRECTS} times in a row; point "
            f"--base-url at the server's final address"
        )

    def close(self) -> None:
        """Close the idle connections; connections in use close when they are handed back."""
        self._pool.close()

    def _exchange(self, method: str, url: str, body: bytes | None, deadline: float) -> _Reply:
        """One request and its answer. A pooled connection that fails before any answer has
        most likely been closed by the server while it sat idle (an idle timeout): the request
        goes once more on a new connection, at no cost to the retry budget."""
        connection = self._pool.take()
        if connection.sock is not None:
            try:
                return self._on(connection, method, url, body, deadline)
            except _StaleConnectionError:
                connection = self._pool.new()
        return self._on(connection, method, url, body, deadline)

    def _on(
        self,
        connection: _Connection,
        method: str,
        url: str,
        body: bytes | None,
        deadline: float,
    ) -> _Reply:
        """The exchange on one connection; the connection goes back to the pool only after a
        complete answer that leaves it open, and is closed on every other way out."""
        reused = connection.sock is not None
        response: http.client.HTTPResponse | None = None
        keep = False
        try:
            connection.set_deadline(deadline)
            if not reused:
                self._connect(connection)
            headers = dict(self.headers)
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                connection.request(method, _request_target(url), body=body, headers=headers)
                response = connection.getresponse()
            except ConnectionError as exc:
                if reused:
                    raise _StaleConnectionError(one_line(exc)) from None
                raise
            limit = self.max_bytes if 200 <= response.status < 300 else _ERROR_BODY_LIMIT
            data, complete = _read_body(response, limit, url, cut=limit == _ERROR_BODY_LIMIT)
            keep = complete and not response.will_close
            return _Reply(response.status, response.headers, data, url)
        except TimeoutError:
            raise _TransientError(f"no complete answer within {self.timeout:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise _TransientError(f"connection lost: {one_line(exc)}") from None
        finally:
            if response is not None:
                # A response the connection handed its socket to (Connection: close), or one
                # left unread, holds the socket until closed.
                response.close()
            if keep:
                self._pool.give(connection)
            else:
                connection.close()

    def _connect(self, connection: _Connection) -> None:
        _, host, port = self.origin
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            raise BackendError(
                f"openai backend: cannot connect to {self.base_url} securely: "
                f"{_snippet(exc.verify_message or str(exc))}; if the server's certificate comes "
                f"from a private CA, set SSL_CERT_FILE to that CA's certificate file"
            ) from None
        except TimeoutError:
            raise
        except OSError as exc:
            raise _TransientError(
                f"cannot connect to {host}:{port}: {_snippet(one_line(exc))}"
            ) from None

    def _redirect_target(self, method: str, reply: _Reply) -> str:
        """Where a redirect leads, if it is one to follow; else the one-line error saying why."""
        location = reply.headers.get("Location")
        if not location:
            raise BackendError(
                f"openai backend: {reply.url} answered a redirect (HTTP {reply.status}) without "
                f"a Location; check --base-url"
            )
        target = urllib.parse.urljoin(reply.url, location.strip())
        try:
            origin = _origin(target)
        except ValueError:
            origin = None
        if origin is None or not target.isascii() or not target.isprintable() or " " in target:
            raise BackendError(
                f"openai backend: {reply.url} answered a redirect (HTTP {reply.status}) to an "
                f"unusable address {_snippet(ascii(location))}; check --base-url"
            )
        target = target.split("#", 1)[0]
        final = self._suggested_base(reply.url, target)
        if origin != self.origin:
            raise BackendError(
                f"openai backend: {reply.url} redirects (HTTP {reply.status}) to {target}, "
                f"another origin; gpbench does not follow it, as that would hand the API key to "
                f"another server: point --base-url at the final address{final}"
            )
        if reply.status not in FOLLOWED_REDIRECTS:
            downgrade = (
                f" (a {reply.status} turns a POST into a GET, which drops the conversation)"
                if method == "POST"
                else ""
            )
            raise BackendError(
                f"openai backend: {reply.url} redirects (HTTP {reply.status}) to {target}; "
                f"gpbench follows only 307 and 308 redirects, which keep the method and the "
                f"body{downgrade}: point --base-url at the final address{final}"
            )
        return target

    def _suggested_base(self, url: str, target: str) -> str:
        """`` (--base-url X)`` when the target is the same endpoint under another base URL."""
        if not url.startswith(self.base_url):
            return ""
        endpoint = url[len(self.base_url) :]
        path = target.split("?", 1)[0]
        if endpoint and path.endswith(endpoint) and len(path) > len(endpoint):
            return f" (--base-url {path[: -len(endpoint)]})"
        return ""


class _StaleConnectionError(Exception):
    """A reused connection failed before any answer: the server had closed it while idle."""


def _read_body(
    response: http.client.HTTPResponse, limit: int, url: str, *, cut: bool
) -> tuple[bytes, bool]:
    """The body, read in chunks, and whether it was read to its end.

    More than ``limit`` bytes is an error (BackendError), or with ``cut`` the first ``limit``
    bytes (the rest is left unread). A body that ends before its Content-Length is a lost
    connection (http.client would return it short).
    """
    declared = response.length  # None when chunked or delimited by the connection's close
    if declared is not None and declared > limit and not cut:
        raise _too_large(url, limit)
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = response.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        if not cut:
            raise _too_large(url, limit)
        return b"".join(chunks)[:limit], False
    if response.length:  # bytes still owed: the server closed early
        raise http.client.IncompleteRead(b"", response.length)
    return b"".join(chunks), response.isclosed()


def _too_large(url: str, limit: int) -> BackendError:
    return BackendError(
        f"openai backend: {url} answered more than {limit} bytes (max_response_bytes), far more "
        f"than these endpoints need; check --base-url, or raise the cap with --backend-opt "
        f"max_response_bytes={limit * 4}"
    )


class _Pool:
    """Idle keep-alive connections, most recently used first, shared by the worker threads."""

    def __init__(self, make: Callable[[], _Connection], idle: int) -> None:
        self._make = make
        self._idle_limit = idle
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> _Connection:
        """An idle connection (its socket open), or a new one (not yet connected)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._make()

    def new(self) -> _Connection:
        """A new connection, not yet connected."""
        return self._make()

    def give(self, connection: _Connection) -> None:
        """Hand a connection back after a complete exchange that left it open."""
        with self._lock:
            if not self._closed and len(self._idle) < self._idle_limit:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _DeadlineSocket(socket.socket):
    """A socket whose every send and receive must end by ``deadline`` (``time.monotonic``).

    Each operation waits at most the time left, so the deadline bounds a whole exchange however
    the server spreads its bytes; once it has passed, the next operation raises TimeoutError.
    """

    deadline: float = math.inf

    def _arm(self) -> None:
        self.settimeout(_time_left(self.deadline))

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._arm()
        return super().recv(*args, **kwargs)

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().recv_into(*args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().send(*args, **kwargs)

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._arm()
        super().sendall(*args, **kwargs)


class _DeadlineSSLSocket(_DeadlineSocket, ssl.SSLSocket):
    """The same over TLS: the class this module's SSLContext makes for its connections."""


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's deadline has passed")
    return left


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.sslsocket_class = _DeadlineSSLSocket
    return context


class _Connection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a :class:`_DeadlineSocket` (TLS when given a context)."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        super().__init__(host, port)
        self._tls = tls
        self._deadline = math.inf
        # The Host header leaves out the scheme's default port.
        self.default_port = http.client.HTTPS_PORT if tls is not None else http.client.HTTP_PORT

    def set_deadline(self, deadline: float) -> None:
        """The deadline of the request about to be made on this connection."""
        self._deadline = deadline
        if isinstance(self.sock, _DeadlineSocket):
            self.sock.deadline = deadline

    def connect(self) -> None:
        """Connect (and shake hands) within the deadline."""
        raw = socket.create_connection((self.host, self.port), _time_left(self._deadline))
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is None:
                sock: _DeadlineSocket = _DeadlineSocket(fileno=raw.detach())
            else:
                raw.settimeout(_time_left(self._deadline))
                wrapped = self._tls.wrap_socket(raw, server_hostname=self.host)
                assert isinstance(wrapped, _DeadlineSSLSocket)  # the context's socket class
                sock = wrapped
        except BaseException:
            raw.close()
            raise
        sock.deadline = self._deadline
        self.sock = sock


# -- addresses ----------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"


def normalise_base_url(base_url: str) -> str:
    """The base URL in one canonical spelling: lower-case scheme and host, no default port, the
    path percent-encoded, no trailing slash.

    >>> normalise_base_url(" HTTP://LocalHost:80/v1/ ")
    'http://localhost/v1'

    Raises:
        ConfigError: not an http(s) URL, or one holding credentials, a query or a fragment.
    """
    text = base_url.strip()
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(
            f"--base-url must be an http(s) URL such as http://localhost:8000/v1, got "
            f"{_snippet(ascii(text))}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "--base-url must not hold credentials (user:password@), which would be recorded "
            "with the run: pass the key with --api-key or OPENAI_API_KEY"
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ConfigError(
            f"--base-url must not carry a query or fragment, got {_snippet(ascii(text))}; give "
            f"the address the endpoints hang off, such as http://localhost:8000/v1"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"--base-url has an invalid port: {_snippet(ascii(text))} (a port is 1-65535)"
        ) from None
    try:
        host = parts.hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ConfigError(
            f"--base-url has a host name that is not valid: {_snippet(ascii(text))}"
        ) from None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    # Characters a URL cannot hold are percent-encoded (undecodable command-line bytes as the
    # bytes they were).
    path = urllib.parse.quote(parts.path.rstrip("/"), safe=_PATH_SAFE, errors="surrogateescape")
    return f"{scheme}://{netloc}{path}"


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL; ValueError for anything else."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return scheme, parts.hostname.lower(), parts.port or _DEFAULT_PORTS[scheme]


def _request_target(url: str) -> str:
    """The path and query to put on the request line."""
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _check_api_key(key: str, source: str) -> None:
    """A key goes into one header line: visible ASCII only, or it could end the line early."""
    if not all("!" <= ch <= "~" for ch in key):
        raise ConfigError(
            f"the API key from {source} holds spaces, line breaks or non-ASCII characters; an "
            f"API key is one printable token: check {source}"
        )


# -- server data --------------------------------------------------------------------------------


def _decode_json(reply: _Reply) -> Any:
    """The reply's JSON; a one-line BackendError for anything Python's decoder cannot read."""
    try:
        return parse_json(reply.body.decode("utf-8"))
    except UnicodeDecodeError:
        why = "not UTF-8"
    except ValueError as exc:  # JSONDecodeError: malformed, nested too deeply, a huge integer
        why = one_line(exc)
    raise BackendError(
        f"openai backend: {reply.url} answered with something that is not JSON gpbench can read "
        f"({_snippet(why)}): {_body_snippet(reply.body)}"
    )


def _chat_choice(data: Any, reply: _Reply) -> tuple[str, Any, Any]:
    """The text, finish reason and usage of a chat completion; one-line errors for bad shapes."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        raise BackendError(
            f"openai backend: {reply.url} answered without exactly one choice: "
            f"{_body_snippet(reply.body)}"
        )
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise BackendError(
            f"openai backend: {reply.url} answered a choice without a message (is --base-url "
            f"a chat completions server?): {_body_snippet(reply.body)}"
        )
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise BackendError(
            f"openai backend: {reply.url} answered a message whose content is not text (a JSON "
            f"{type(content).__name__}): {_body_snippet(reply.body)}"
        )
    usage = data.get("usage")
    return content or "", choices[0].get("finish_reason"), usage


def _status_error(reply: _Reply) -> Exception:
    """The error to raise for a non-2xx answer: transient (retry) or final."""
    message = _server_message(reply.body.decode("utf-8", "replace"))
    status, url = reply.status, reply.url
    if status in RETRY_STATUSES or status >= 500:
        retry_after = _seconds(reply.headers.get("Retry-After"))
        return _TransientError(f"HTTP {status}: {_snippet(message)}", retry_after)
    if status in (401, 403):
        return BackendError(
            f"openai backend: {url} refused the API key (HTTP {status}: "
            f"{_snippet(message)}); pass --api-key or set OPENAI_API_KEY"
        )
    if status == 404:
        return _NotFoundError(
            f"openai backend: {url} answered 404 ({_snippet(message)}); check --base-url "
            f"(e.g. http://localhost:8000/v1) and --model"
        )
    return BackendError(f"openai backend: {url} answered HTTP {status}: {_snippet(message)}")


def _server_message(text: str) -> str:
    """The ``error.message`` (or ``message``/``detail``) of an OpenAI-style error body."""
    try:
        data = parse_json(text)
    except ValueError:
        return text.strip()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])
    return text.strip()


_DROP = object()  # a server value not worth recording


def _plain(value: Any) -> Any:
    """A JSON scalar safe to record (text without lone surrogates, finite numbers, integers
    that fit 64 bits, short strings), or _DROP."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else _DROP
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if isinstance(value, str) and len(value) <= _FIELD_TEXT_LIMIT:
        return _clean(value)
    return _DROP


def _plain_fields(data: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The entries of ``data`` under ``keys`` that are plain values, keys and values cleaned."""
    out: dict[str, Any] = {}
    for key in keys:
        if key in data and (value := _plain(data[key])) is not _DROP:
            out[_clean(key)] = value
    return out


def _clean(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD (UTF-8 cannot hold one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare for these servers, and the backoff covers it
    return seconds if seconds >= 0 else None  # NaN fails the comparison too


def _count(usage: Any, key: str) -> int | None:
    value = usage.get(key) if isinstance(usage, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _body_snippet(body: bytes) -> str:
    return _snippet(body[: 4 * _ERROR_TEXT_LIMIT].decode("utf-8", "replace"))


def _snippet(text: str) -> str:
    """Server text fit for a one-line message: whitespace collapsed, control characters and
    lone surrogates replaced (no terminal escapes), at most 300 characters."""
    flat = _CONTROL.sub("\ufffd", " ".join(_clean(text).split()))
    if len(flat) <= _ERROR_TEXT_LIMIT:
        return flat
    return flat[: _ERROR_TEXT_LIMIT - 3] + "..."
