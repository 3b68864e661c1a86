"""Loading, validating and writing datasets. Imports nothing else of poisonguard.

Names load on first use (PEP 562): ``from poisonguard.data import atomic_write_text``
does not import pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Column": "schema", "TableSchema": "schema",
    "Dataset": "dataset", "Modality": "dataset", "dataset_digest": "dataset",
    "row_ids": "dataset", "RowIds": "ids",
    "atomic_path": "files", "atomic_write_bytes": "files", "atomic_write_text": "files",
    "check_output_path": "files", "ensure_not_same": "files",
    "load_dataset": "loaders", "load_embeddings": "loaders", "load_table": "loaders",
    "check_classes": "tables", "label_codes": "tables", "table_to_dataset": "tables",
    "dataset_to_table": "writers", "label_values": "writers", "save_dataset": "writers",
    "save_table": "writers",
    "ngrams": "tokens", "phrase_spans": "tokens", "without_phrases": "tokens",
    "word_spans": "tokens", "words": "tokens",
}

__all__ = [
    "Column",
    "Dataset",
    "Modality",
    "RowIds",
    "TableSchema",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_classes",
    "check_output_path",
    "dataset_digest",
    "dataset_to_table",
    "ensure_not_same",
    "label_codes",
    "label_values",
    "load_dataset",
    "load_embeddings",
    "load_table",
    "ngrams",
    "phrase_spans",
    "row_ids",
    "save_dataset",
    "save_table",
    "table_to_dataset",
    "without_phrases",
    "word_spans",
    "words",
]

if TYPE_CHECKING:
    from poisonguard.data.dataset import Dataset, Modality, dataset_digest, row_ids
    from poisonguard.data.files import (
        atomic_path,
        atomic_write_bytes,
        atomic_write_text,
        check_output_path,
        ensure_not_same,
    )
    from poisonguard.data.ids import RowIds
    from poisonguard.data.loaders import load_dataset, load_embeddings, load_table
    from poisonguard.data.schema import Column, TableSchema
    from poisonguard.data.tables import check_classes, label_codes, table_to_dataset
    from poisonguard.data.tokens import ngrams, phrase_spans, without_phrases, word_spans, words
    from poisonguard.data.writers import (
        dataset_to_table,
        label_values,
        save_dataset,
        save_table,
    )


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"poisonguard.data.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'poisonguard.data' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*__all__, *(n for n in globals() if n.startswith("_"))})
