"""MiniLM sentence embeddings: offline, meaningful, kept per scan (never across the
service's scans), and the scan's text features."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from poisonguard.datasets import builtin_dataset
from poisonguard.memo import scan_memo
from poisonguard.represent import build_representation
from poisonguard.represent import text as text_rep
from poisonguard.represent.text import embed_texts

SENTENCES = ["The flight was delayed for three hours.",
             "Our plane left three hours late.",
             "I love the new phone's camera."]


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any attempt to open a connection fails the test (and is recorded)."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"network disabled in this test (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection",
                        lambda address, *a, **k: refuse(socket.socket(), address))
    yield attempts


def test_the_model_loads_and_embeds_without_network(no_network: list[object]) -> None:
    text_rep._model.cache_clear()
    vectors = embed_texts(SENTENCES, batch_size=2)
    assert no_network == []
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.5 > unrelated + 0.2


def test_vectors_are_kept_per_scan_and_forgotten_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[str] = []
    model = text_rep._model

    def counting(device: str) -> Any:
        real = model(device)

        class Counting:
            def encode(self, texts: list[str], **kw: Any) -> Any:
                encoded.extend(texts)
                return real.encode(texts, **kw)

        return Counting()

    monkeypatch.setattr(text_rep, "_model", counting)
    with scan_memo() as memo:
        first = embed_texts(SENTENCES)
        again = embed_texts([SENTENCES[2], SENTENCES[0], SENTENCES[2]])
        assert encoded == SENTENCES and len(memo) == 1  # the second call: from the memo
    assert np.array_equal(again, first[[2, 0, 2]])
    with scan_memo():  # the next scan (another user's, in the service): encodes anew
        embed_texts(SENTENCES[:1])
    embed_texts(SENTENCES[:1])  # outside a scan: every call encodes
    assert encoded == [*SENTENCES, SENTENCES[0], SENTENCES[0]]


def test_texts_get_an_mlp_on_their_embeddings() -> None:
    tweets = builtin_dataset("tweets-300")
    rep = build_representation(tweets, folds=2, seed=0)
    assert rep.model == "mlp-on-all-MiniLM-L6-v2(64)"
    assert rep.features.shape == (300, 384) and rep.proba.shape == (300, 3)
    assert (rep.predicted == tweets.labels).mean() > 0.6  # out-of-fold: it reads sentiment
