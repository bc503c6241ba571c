"""The OpenAI-compatible backend: chat completions from a server (``vllm serve``, or any other).

Use:
    ``gpbench eval --backend openai --base-url http://localhost:8000/v1 --model NAME``, where
    NAME is a model the server serves (for ``vllm serve ckpt/`` that is ``ckpt/`` as typed, or
    its ``--served-model-name``). The API key comes from ``--api-key`` (``api_key=``), else the
    ``OPENAI_API_KEY`` variable, else ``EMPTY`` (what ``vllm serve`` expects without ``--api-key``).

Requests:
    ``POST {base_url}/chat/completions``: the conversation, ``max_tokens``, ``temperature``,
    ``top_p`` and the request's own ``seed``, ``n`` 1. The server applies its chat template.
    Image parts become ``image_url`` parts holding base64 PNG data URLs. Up to ``concurrency``
    requests are in flight at once (a thread pool: the server batches them). ``finish_reason``
    ``length`` stays ``length``; every other reason (``stop``, ``content_filter``, ...) is
    ``stop``. Knobs the OpenAI API lacks (top_k, repetition penalty) are left to the server's
    defaults; for ``vllm serve`` those come from the checkpoint's generation_config unless the
    server is started with ``--generation-config vllm``.

Failures:
    A connection error, a timeout, a 408, 409, 429 or 5xx answer is retried up to
    ``max_retries`` times, waiting ``backoff`` seconds and doubling each time (at most
    ``max_backoff``; a ``Retry-After`` header is honoured within that). Then the whole batch
    fails with a one-line :class:`~gpbench.errors.BackendError`; episodes that finished in earlier
    turns are already on disk, so re-running the same command resumes the run. Other answers
    (400, 401, 404, ...) fail at once with the server's message.

Recorded in run.json:
    the base URL, the model, the server's model card (``/v1/models``: id, root, max_model_len)
    and version (``/version`` on ``vllm serve``), and the retry settings; never the API key.

Settings:
    ``base_url`` (required), ``api_key``, ``concurrency`` (8), ``timeout`` (600 s per request:
    the server sends its answer at once, so this bounds one generation), ``max_retries`` (5),
    ``backoff`` (1 s), ``max_backoff`` (30 s), ``images`` (False: set True when the served model
    reads images, so vision tasks are run). ``batch_size`` is accepted and ignored.

Why the standard library and not the ``openai`` package: the protocol here is one JSON POST and
two GETs; with ``urllib`` the retry policy, timeouts and error messages are gpbench's own and
tested as such (the ``openai`` client retries by itself too, and would need another install).
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from http.client import HTTPException
from typing import Any, TypeVar

import gpbench
from gpbench.errors import BackendError, ConfigError, did_you_mean
from gpbench.harness.backends import Completion, Request, Sampling
from gpbench.harness.backends.chat import one_line

DEFAULT_API_KEY = "EMPTY"
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_IMAGE_CACHE_LIMIT = 256  # encoded images kept (episodes resend their images every turn)
_ERROR_TEXT_LIMIT = 300
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
        images: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        if not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0 or max_backoff < 0:
            raise ConfigError(f"backoff and max_backoff must be >= 0, got {backoff}, {max_backoff}")
        self.model = model
        self.base_url = _check_url(base_url)
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or DEFAULT_API_KEY
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.supports_images = images
        self._images: dict[int, tuple[Any, str]] = {}
        self._images_lock = threading.Lock()
        self._closed = False
        self.server_models, self.server_model = self._models()
        self.server_version = self._version()

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
        # process's exit); they end at their timeout and are dropped.
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
        }

    def close(self) -> None:
        """Forget cached images; the server keeps running."""
        self._closed = True
        with self._images_lock:
            self._images.clear()

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
            "a chat completion", lambda: self._send("POST", url, body), stop, _RESUME
        )
        try:
            [choice] = reply["choices"]
            text = choice["message"].get("content") or ""
            raw_reason = choice.get("finish_reason")
            usage = reply.get("usage") or {}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BackendError(
                f"openai backend: {url} answered without one choice holding a message: "
                f"{_snippet(json.dumps(reply))}"
            ) from None
        reason = "length" if raw_reason == "length" else "stop"
        return str(text), reason, _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")

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
            listing = self._retrying("listing models", lambda: self._send("GET", url), None, _START)
        except _NotFoundError:
            return None, None
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            return None, None  # not the OpenAI shape: nothing to check the model against
        cards = [card for card in listing["data"] if isinstance(card, dict)]
        ids = [str(card.get("id")) for card in cards]
        if ids and self.model not in ids:
            raise ConfigError(
                f"the server at {self.base_url} serves {', '.join(ids)}, not "
                f"{self.model!r}{did_you_mean(self.model, ids)}; pass --model {ids[0]}"
            )
        card = next((c for c in cards if c.get("id") == self.model), None)
        keep = ("id", "root", "parent", "owned_by", "max_model_len", "created")
        return ids, None if card is None else {k: card[k] for k in keep if k in card}

    def _version(self) -> dict[str, Any] | None:
        """``/version`` at the server's root (``vllm serve`` has it; others may not)."""
        root = self.base_url.removesuffix("/v1")
        try:
            answer = self._send("GET", f"{root}/version")
        except (_NotFoundError, _TransientError, BackendError):
            return None
        return answer if isinstance(answer, dict) else {"version": answer}

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

    def _send(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": f"gpbench/{gpbench.__version__}",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _status_error(exc, url) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _TransientError(f"no answer within {self.timeout:g} s") from None
            raise _TransientError(f"cannot connect: {reason}") from None
        except TimeoutError:
            raise _TransientError(f"no answer within {self.timeout:g} s") from None
        except (ConnectionError, HTTPException, OSError) as exc:
            raise _TransientError(f"connection lost: {one_line(exc)}") from None
        try:
            return json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BackendError(
                f"openai backend: {url} answered with something other than JSON: "
                f"{_snippet(payload.decode('utf-8', 'replace'))}"
            ) from None


class _NotFoundError(BackendError):
    """A 404: the endpoint (or the model) is not on this server."""


def _status_error(exc: urllib.error.HTTPError, url: str) -> Exception:
    """The error to raise for an HTTP error answer: transient (retry) or final."""
    try:
        text = exc.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    message = _server_message(text) or exc.reason or ""
    status = exc.code
    if status in RETRY_STATUSES or status >= 500:
        retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
        return _TransientError(f"HTTP {status}: {_snippet(str(message))}", retry_after)
    if status in (401, 403):
        return BackendError(
            f"openai backend: {url} refused the API key (HTTP {status}: "
            f"{_snippet(str(message))}); pass --api-key or set OPENAI_API_KEY"
        )
    if status == 404:
        return _NotFoundError(
            f"openai backend: {url} answered 404 ({_snippet(str(message))}); check --base-url "
            f"(e.g. http://localhost:8000/v1) and --model"
        )
    return BackendError(f"openai backend: {url} answered HTTP {status}: {_snippet(str(message))}")


def _server_message(text: str) -> str:
    """The ``error.message`` (or ``message``/``detail``) of an OpenAI-style error body."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text.strip()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])
    return text.strip()


def _check_url(base_url: str) -> str:
    parsed = urllib.parse.urlsplit(base_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"--base-url must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}"
        )
    return base_url.strip().rstrip("/")


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare for these servers, and the backoff covers it
    return seconds if seconds >= 0 else None


def _count(usage: Any, key: str) -> int | None:
    value = usage.get(key) if isinstance(usage, dict) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= _ERROR_TEXT_LIMIT:
        return flat
    return flat[: _ERROR_TEXT_LIMIT - 3] + "..."
