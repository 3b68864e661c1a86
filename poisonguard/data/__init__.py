"""Loading, validating and writing datasets. Imports nothing else of poisonguard."""

from poisonguard.data.dataset import Dataset, Modality, dataset_digest, row_ids
from poisonguard.data.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    ensure_not_same,
)
from poisonguard.data.loaders import load_dataset, load_embeddings, load_table
from poisonguard.data.schema import Column, TableSchema
from poisonguard.data.tables import check_classes, label_codes, table_to_dataset
from poisonguard.data.writers import dataset_to_table, label_values, save_dataset, save_table

__all__ = [
    "Column",
    "Dataset",
    "Modality",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_classes",
    "dataset_digest",
    "dataset_to_table",
    "ensure_not_same",
    "label_codes",
    "label_values",
    "load_dataset",
    "load_embeddings",
    "load_table",
    "row_ids",
    "save_dataset",
    "save_table",
    "TableSchema",
    "table_to_dataset",
]
