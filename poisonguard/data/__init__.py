"""Loading, validating and writing datasets. Imports nothing else of poisonguard."""

from poisonguard.data.dataset import Dataset, Modality, row_ids
from poisonguard.data.digest import dataset_digest
from poisonguard.data.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    ensure_not_same,
)
from poisonguard.data.loaders import load_dataset, load_embeddings, load_table, table_to_dataset
from poisonguard.data.writers import dataset_to_table, label_values, save_dataset, save_table

__all__ = [
    "Dataset",
    "Modality",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "dataset_digest",
    "dataset_to_table",
    "ensure_not_same",
    "label_values",
    "load_dataset",
    "load_embeddings",
    "load_table",
    "row_ids",
    "save_dataset",
    "save_table",
    "table_to_dataset",
]
