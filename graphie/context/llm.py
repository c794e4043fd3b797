"""``llm``: notes about the post from a chat model the user runs or rents, with PGIM's prompt
(Li et al., "Prompting ChatGPT in MNER", EMNLP Findings 2023).

    provider = graphie.context.create(
        "llm", base_url="http://localhost:8000/v1", model="Qwen2.5-7B-Instruct",
        examples="examples.jsonl", vision=False)
    provider(Post("Kawhi Leonard wins block of the year #NBAAwards", caption="a basketball player"))
    # 'caption: a basketball player | notes: Named entities: 1. Kawhi Leonard (person) ...'

Any server that speaks OpenAI's chat-completions API works: a local vLLM, llama.cpp or Ollama
server, or a hosted one. The request goes to ``{base_url}/chat/completions``; an API key, when
the server needs one, is read from the environment variable named by ``api_key_env`` (never
from the settings, so it stays out of configs and logs).

The prompt (PGIM's, in our words): the task (name the entities of the post's text, with their
kind, and say why, using what the image shows and general knowledge), then up to
``num_examples`` worked examples from the user's ``examples`` file, chosen by their similarity
to the post, then the post: its text and, when known, a description of its image. The model's
answer, on one line, is the notes. The image description is the post's caption when it has one;
otherwise, for an endpoint that takes images (``vision=True``), the model is first asked to
describe the image, which is sent as a base64 ``data:`` URL in OpenAI's vision message format
(and sent again with the notes prompt). The context is then written as training writes it:
``"caption: <description> | notes: <notes>"`` (see :func:`graphie.context.given.format_context`).

The examples file has one JSON object per line: ``{"text": ..., "notes": ...}``, optionally with
``"caption"`` (a description of the example's image) and ``"id"``; ``notes`` is the answer the
model should imitate (PGIM's hand-written answers: "Named entities: 1. Kawhi Leonard
(person/player) ... Reasoning: ...").

Deviations from PGIM:
    - PGIM picks examples by the cosine similarity of fused text and image embeddings; here by
      the TF-IDF cosine of the words of text and caption (no model to load, no image needed),
      the most similar example placed last, nearest the post.
    - PGIM asks ChatGPT with the image as a BLIP-2 caption; a vision endpoint here also sees the
      image itself.
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
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from ..errors import DatasetFormatError, InvalidInputError
from ..types import Post
from .base import CACHE, ContextCache, ContextProvider, ContextReplyError, ContextUnavailableError, file_fingerprint, iter_jsonl
from .given import format_context

__all__ = ["DEFAULT_LABELS", "Example", "LLMContext", "build_messages", "image_data_url", "nearest_examples",
           "read_examples"]

#: The entity kinds the prompt names (Twitter-2015/2017's PER, ORG, LOC and MISC, in words).
DEFAULT_LABELS = ("person", "organization", "location", "miscellaneous")
_EXAMPLE_KEYS = ("id", "text", "caption", "notes")
_WORD = re.compile(r"\w+")
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MAX_REPLY_BYTES = 8 << 20

SYSTEM_PROMPT = "You help a named-entity recognizer read social-media posts. Answer briefly and in English."

TASK_PROMPT = (
    "A social-media post pairs a short text with an image. Find the named entities in the text of "
    "the post below and give the kind of each ({labels}). Then explain, in a few sentences, why each "
    "is an entity of that kind, using general knowledge and what the image shows; say whether the "
    "image is related to the text. If the text names no entity, say so. Answer in the form of the "
    "examples."
)

DESCRIBE_PROMPT = (
    "Describe this image in one short sentence (at most 30 words): who or what is in it, what is "
    "happening, and any text written in it."
)


class Example:
    """One worked example of the prompt: a post's ``text``, an optional ``caption`` of its image
    and the ``notes`` the model should write for it."""

    __slots__ = ("text", "caption", "notes")

    def __init__(self, text: str, notes: str, caption: str | None = None):
        self.text, self.notes, self.caption = text, notes, caption

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``text``, ``notes`` and, when set, ``caption``."""
        d = {"text": self.text, "notes": self.notes}
        if self.caption:
            d["caption"] = self.caption
        return d

    def __repr__(self) -> str:
        return f"Example(text={self.text[:40]!r})"


def _example(record: Any, where: str, path: Any, line_no: int | None) -> Example:
    def bad(reason: str) -> DatasetFormatError:
        return DatasetFormatError(path, line_no, reason) if path is not None else InvalidInputError(f"{where}: {reason}")

    if not isinstance(record, dict):
        raise bad("an example must be a JSON object")
    unknown = [k for k in record if k not in _EXAMPLE_KEYS]
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; an example has {', '.join(_EXAMPLE_KEYS)}")
    for key in ("text", "notes"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise bad(f"an example needs a non-empty string {key!r}")
    caption = record.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise bad("\"caption\" must be a string")
    return Example(" ".join(record["text"].split()), " ".join(record["notes"].split()),
                   " ".join(caption.split()) if caption else None)


def read_examples(examples: str | os.PathLike | list[dict[str, Any]]) -> list[Example]:
    """The worked examples of a JSONL file (one ``{"text", "notes"[, "caption", "id"]}`` object a
    line) or of a list of such dicts.

    Raises:
        DatasetFormatError: a line that is not such an object (the message names file and line),
            or a file with no example.
        InvalidInputError: the file does not exist, or a dict of the list is malformed.
    """
    if isinstance(examples, list):
        return [_example(r, f"example {i}", None, None) for i, r in enumerate(examples)]
    path = Path(examples).expanduser()
    out = [_example(record, "", path, line_no) for line_no, record in iter_jsonl(path, "llm context examples")]
    if not out:
        raise DatasetFormatError(path, None, "no examples in the file")
    return out


def _words(text: str) -> Counter:
    return Counter(w.lower() for w in _WORD.findall(text))


def nearest_examples(examples: list[Example], text: str, caption: str | None, n: int) -> list[Example]:
    """The ``n`` examples most similar to a post (TF-IDF cosine of the words of text and caption,
    IDF over the examples), least similar first, so that the most similar stands nearest the post;
    ties keep file order."""
    if n <= 0 or not examples:
        return []
    docs = [_words(f"{e.text} {e.caption or ''}") for e in examples]
    df = Counter(w for d in docs for w in d)
    idf = {w: math.log((1 + len(docs)) / (1 + c)) + 1 for w, c in df.items()}

    def vector(counts: Counter) -> dict[str, float]:
        v = {w: c * idf.get(w, math.log(1 + len(docs)) + 1) for w, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    query = vector(_words(f"{text} {caption or ''}"))
    scores = [sum(query.get(w, 0.0) * x for w, x in vector(d).items()) for d in docs]
    best = sorted(range(len(examples)), key=lambda i: (-scores[i], i))[:n]
    return [examples[i] for i in reversed(best)]


def image_data_url(image: Any, max_side: int = 1024) -> str:
    """The image (a path, bytes or a PIL image) as a ``data:image/jpeg;base64,...`` URL: decoded
    and checked by :func:`parsers.image.loading.load_image`, shrunk to at most ``max_side``
    pixels a side, written as JPEG (quality 90).

    Raises:
        ImageError: the image cannot be read.
    """
    from parsers.image.loading import load_image

    picture = load_image(image)
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _post_block(text: str, caption: str | None) -> str:
    return f"Text: {text}\nImage: {caption or 'not described'}"


def build_messages(text: str, caption: str | None, examples: list[Example], image_url: str | None = None,
                   labels: tuple[str, ...] = DEFAULT_LABELS) -> list[dict[str, Any]]:
    """The chat messages of the notes request: a system message, then one user message holding
    the task, the examples (``Text:``, ``Image:``, ``Answer:``) and the post (``Text:``,
    ``Image:``, ``Answer:`` left open); with ``image_url``, the user message's content is a list
    of a text part and an ``image_url`` part (OpenAI's vision format)."""
    parts = [TASK_PROMPT.format(labels=", ".join(labels))]
    for k, example in enumerate(examples, 1):
        parts.append(f"Example {k}\n{_post_block(example.text, example.caption)}\nAnswer: {example.notes}")
    parts.append(f"The post\n{_post_block(text, caption)}\nAnswer:")
    prompt = "\n\n".join(parts)
    content: Any = prompt if image_url is None else [
        {"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": image_url}}]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def _one_line(text: str, width: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class LLMContext(ContextProvider):
    """Notes about the post (and a description of its image) from an OpenAI-compatible chat endpoint.

    Args:
        base_url (str): the API's base URL, e.g. ``http://localhost:8000/v1`` (vLLM),
            ``http://localhost:8080/v1`` (llama.cpp), ``http://localhost:11434/v1`` (Ollama);
            a URL ending in ``/chat/completions`` is used as it is.
        model (str): the model name the server knows.
        examples (str | os.PathLike | list[dict] | None): worked examples, a JSONL file or a
            list of dicts (see the module docs); ``None``: none (zero-shot).
        num_examples (int): examples put in each prompt at most (default 5).
        vision (bool): the endpoint takes images: a post's image is sent with the notes request
            and, when the post has no caption, described first (default ``False``).
        api_key_env (str | None): environment variable holding the API key, sent as
            ``Authorization: Bearer``; ``None``: no key.
        labels (tuple[str, ...]): the entity kinds the prompt names.
        max_tokens (int): longest answer, in tokens (default 300).
        temperature (float): sampling temperature (default 0: the same post gives the same notes,
            as far as the server is deterministic).
        timeout (float): seconds to wait for one answer (default 60).
        max_image_side (int): the image is shrunk to at most this many pixels a side (default 1024).
        workers (int): requests sent at once by :meth:`~graphie.context.base.ContextProvider.batch` (default 4).
        cache (ContextCache | None): see :class:`~graphie.context.base.ContextProvider`.

    Raises:
        InvalidInputError: a setting out of range, a URL that is not ``http(s)``, or an
            ``api_key_env`` variable that is not set.
        DatasetFormatError: a malformed examples file.

    Calls raise :class:`~graphie.context.base.ContextUnavailableError` when the endpoint cannot
    be reached, refuses the request or does not answer within ``timeout``, and
    :class:`~graphie.context.base.ContextReplyError` when its answer is not a chat completion;
    both name the URL. Batch calls give these as per-post failures.
    """

    name: ClassVar[str] = "llm"
    reads: ClassVar[tuple[str, ...]] = ("text", "caption", "image")

    def __init__(self, base_url: str, model: str, examples: str | os.PathLike | list[dict[str, Any]] | None = None,
                 num_examples: int = 5, vision: bool = False, api_key_env: str | None = None,
                 labels: tuple[str, ...] | list[str] = DEFAULT_LABELS, max_tokens: int = 300,
                 temperature: float = 0.0, timeout: float = 60.0, max_image_side: int = 1024, workers: int = 4,
                 cache: ContextCache | None = CACHE):
        super().__init__(cache=cache, workers=workers)
        if not isinstance(base_url, str) or not re.match(r"^https?://[^/\s]+", base_url):
            raise InvalidInputError(f"llm context needs base_url = an http:// or https:// URL, got {base_url!r}")
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"llm context needs model = the name the server knows, got {model!r}")
        for option, value, least in (("num_examples", num_examples, 0), ("max_tokens", max_tokens, 1),
                                     ("max_image_side", max_image_side, 16)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise InvalidInputError(f"llm context needs {option} >= {least}, got {value!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidInputError(f"llm context needs timeout > 0 seconds, got {timeout!r}")
        if not isinstance(temperature, (int, float)) or temperature < 0:
            raise InvalidInputError(f"llm context needs temperature >= 0, got {temperature!r}")
        labels = tuple(labels)
        if not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise InvalidInputError(f"llm context needs labels = non-empty strings, got {labels!r}")
        self.api_key: str | None = None
        if api_key_env is not None:
            self.api_key = os.environ.get(api_key_env)
            if not self.api_key:
                raise InvalidInputError(f"llm context: the environment variable {api_key_env} (api_key_env) is not set")
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
        self.examples = read_examples(examples) if examples is not None else []
        examples_key = (file_fingerprint(Path(examples).expanduser()) if isinstance(examples, (str, os.PathLike))
                        else [e.to_dict() for e in self.examples])
        self.settings: dict[str, Any] = {
            "url": self.url, "model": model, "examples": examples_key, "num_examples": num_examples,
            "vision": bool(vision), "labels": list(labels), "max_tokens": max_tokens,
            "temperature": float(temperature), "max_image_side": max_image_side}
        self.timeout = float(timeout)

    # --- the endpoint --------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _send(self, url: str, payload: dict[str, Any] | None) -> Any:
        """The decoded JSON answer of a POST (``payload``) or GET (``None``) to ``url``."""
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(url, data=data, headers=self._headers(), method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read(_MAX_REPLY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = _one_line(exc.read(2000).decode("utf-8", "replace"))
            except OSError:
                pass
            error = ContextUnavailableError(
                f"llm context endpoint {url} refused the request: HTTP {exc.code} {exc.reason}"
                + (f": {detail}" if detail else ""))
            error.status = exc.code
            raise error from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise ContextUnavailableError(f"llm context endpoint {url} did not answer within {self.timeout:g} s") from None
            raise ContextUnavailableError(f"llm context endpoint {url} is unreachable: {_one_line(str(reason))}") from None
        except (TimeoutError, socket.timeout):
            raise ContextUnavailableError(f"llm context endpoint {url} did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise ContextUnavailableError(f"llm context endpoint {url} is unreachable: {_one_line(str(exc))}") from None
        except http.client.HTTPException as exc:
            raise ContextUnavailableError(f"llm context endpoint {url} does not speak HTTP: {type(exc).__name__}") from None
        if len(body) > _MAX_REPLY_BYTES:
            raise ContextReplyError(f"llm context endpoint {url} sent a malformed reply: more than {_MAX_REPLY_BYTES} bytes")
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ContextReplyError(
                f"llm context endpoint {url} sent a malformed reply: not JSON: {_one_line(body.decode('utf-8', 'replace'), 80)!r}") from None

    def chat(self, messages: list[dict[str, Any]], max_tokens: int | None = None) -> str:
        """The text of the endpoint's answer to ``messages`` (``<think>`` blocks removed,
        whitespace collapsed to single spaces; ``""`` for an empty answer).

        Raises:
            ContextUnavailableError: the endpoint cannot be reached, refuses or times out.
            ContextReplyError: the answer is not a chat completion with a text message.
        """
        payload = {"model": self.settings["model"], "messages": messages,
                   "max_tokens": max_tokens or self.settings["max_tokens"],
                   "temperature": self.settings["temperature"], "stream": False}
        reply = self._send(self.url, payload)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            error = reply.get("error") if isinstance(reply, dict) else None
            why = f"error {_one_line(json.dumps(error), 120)}" if error else "no choices[0].message.content"
            raise ContextReplyError(f"llm context endpoint {self.url} sent a malformed reply: {why}") from None
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            raise ContextReplyError(f"llm context endpoint {self.url} sent a malformed reply: "
                                    f"choices[0].message.content is {type(content).__name__}, not text")
        return " ".join(_THINKING.sub(" ", content).split())

    def check(self) -> None:
        """Raise :class:`~graphie.context.base.ContextUnavailableError` now when the endpoint
        cannot be reached or rejects the key (asks ``GET {base}/models``); call it once before a
        long batch to fail fast rather than post by post."""
        models = self.url[: -len("/chat/completions")] + "/models"
        try:
            self._send(models, None)
        except ContextUnavailableError as exc:
            if exc.status is None or exc.status in (401, 403):
                raise  # no answer, or the key is rejected; any other status: the server is there
        except ContextReplyError:
            pass  # it answered: reachable

    # --- one post ------------------------------------------------------------------------------

    def describe(self, image: Any) -> str | None:
        """A one-sentence description of ``image`` by the endpoint (``vision=True`` only), ``None`` when empty."""
        url = image_data_url(image, self.settings["max_image_side"])
        messages = [{"role": "user", "content": [{"type": "text", "text": DESCRIBE_PROMPT},
                                                  {"type": "image_url", "image_url": {"url": url}}]}]
        return self.chat(messages, max_tokens=80) or None

    def compute(self, post: Post) -> str | None:
        """The post's context: ``"caption: <description> | notes: <notes>"``, or the notes alone
        when the image is not described; ``None`` when the model answers nothing."""
        from parsers.scene import SceneGraph

        image = post.image if self.settings["vision"] and not isinstance(post.image, SceneGraph) else None
        caption = post.caption
        if image is not None and not caption:
            caption = self.describe(image)
        examples = nearest_examples(self.examples, post.text, caption, self.settings["num_examples"])
        url = image_data_url(image, self.settings["max_image_side"]) if image is not None else None
        messages = build_messages(post.text, caption, examples, url, tuple(self.settings["labels"]))
        notes = self.chat(messages)
        if notes.lower().startswith("answer:"):
            notes = notes[len("answer:"):].strip()
        return format_context(caption, notes or None)
