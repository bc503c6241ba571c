"""Chat templates and message conversion shared by the backends that render prompts themselves.

The ``hf`` and ``vllm`` backends both render a conversation with the checkpoint's chat template
(or the ``chat_template`` setting) and record the template's sha256, so the two give the same
prompt for the same checkpoint. Light on purpose: no torch, no transformers at import time.

>>> source = resolve_template("plain", None, Path("ckpt"))[1]
>>> source
'builtin:plain'
>>> template_message({"role": "user", "content": [{"type": "text", "text": "hi"}]}, vision=False)
{'role': 'user', 'content': 'hi'}
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from gpbench.errors import BackendError, ConfigError, ModelLoadError
from gpbench.serialization import parse_json

PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}User: {% elif message['role'] == 'assistant' %}Assistant: "
    "{% else %}{{ message['role'] | capitalize }}: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
"""A minimal template for base models that ship none (text only: it has no image token)."""

BUILTIN_TEMPLATES = {"plain": PLAIN_TEMPLATE}


def default_template(processor: Any, tokenizer: Any) -> str | None:
    """The checkpoint's own chat template: the processor's (vision-language), else the tokenizer's."""
    for owner in (processor, tokenizer):
        template = getattr(owner, "chat_template", None) if owner is not None else None
        if isinstance(template, dict):  # named templates: the default one answers chats
            template = template.get("default")
        if isinstance(template, str) and template:
            return template
    return None


def resolve_template(setting: str | None, default: str | None, folder: Path) -> tuple[str, str]:
    """The template to render with and where it came from (``checkpoint``, ``builtin:plain``,
    ``setting`` for an inline Jinja string, ``file:<path>``).

    Raises:
        ModelLoadError: no setting and the checkpoint has no template (a base model).
        ConfigError: the setting is neither a built-in, a Jinja string nor a readable file.
    """
    if setting is None:
        if default is None:
            raise ModelLoadError(
                f"{folder} has no chat template (a base model?); pass chat_template=plain, or a "
                f"Jinja template string or file"
            )
        return default, "checkpoint"
    if setting in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[setting], f"builtin:{setting}"
    if "{{" in setting or "{%" in setting:
        return setting, "setting"
    path = Path(setting).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"chat_template {setting!r} is not a file, a Jinja template or a built-in "
            f"({', '.join(BUILTIN_TEMPLATES)})"
        )
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":  # chat_template.json, as processors save it
        try:
            text = str(parse_json(text)["chat_template"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{path} holds no 'chat_template' string") from None
    return text, f"file:{path}"


def template_sha256(template: str) -> str:
    """The hash recorded in run.json, so two runs can tell whether their prompts were rendered alike."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()


def template_message(
    message: dict[str, Any], *, vision: bool, model: str = "this model"
) -> dict[str, Any]:
    """One gpbench message in the form chat templates expect.

    Vision-language models get a list of parts with ``{"type": "image"}`` placeholders (the
    template writes the model's image token; the backend passes the pixels separately). Text
    models get the text parts joined into one string.

    Raises:
        BackendError: an image part for a text-only model (``model`` names it in the message).
    """
    content = message["content"]
    if vision:
        if isinstance(content, str):
            parts: list[dict[str, Any]] = [{"type": "text", "text": content}]
        else:
            parts = [
                {"type": "image"} if part.get("type") == "image" else dict(part) for part in content
            ]
        return {"role": message["role"], "content": parts}
    if isinstance(content, str):
        return {"role": message["role"], "content": content}
    if any(part.get("type") == "image" for part in content):
        raise BackendError(
            f"{model} is a text-only model; it cannot take image parts: evaluate text tasks, or "
            f"pass a vision-language checkpoint"
        )
    text = "".join(str(part.get("text", "")) for part in content)
    return {"role": message["role"], "content": text}


def is_vision_language(config: Any, transformers: Any) -> bool:
    """The transformers config describes a model that reads images."""
    if getattr(config, "vision_config", None) is not None:
        return True
    auto = transformers.models.auto.modeling_auto
    model_type = getattr(config, "model_type", None)
    # Some types (gemma3, mllama, ...) map to both; with no vision tower they are text models.
    return (
        model_type in auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        and model_type not in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    )


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
