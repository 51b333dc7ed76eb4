"""Batch classification of image files with Ray Data: one Model and one
Classifier per actor, images read by Ray's own read tasks."""

from __future__ import annotations

import glob
import os
from typing import Optional, Sequence, Union

import pandas as pd
import pyarrow as pa
import ray
import ray.data

import ravlt

from ._model_file import checked_classifier

# The files `ravlt classify` takes from a folder (searched recursively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# The rows classify() returns: one fixed schema for every batch, so that a
# batch without errors (an all-null column) joins the others in one table.
SCHEMA = pa.schema([
    ("path", pa.string()),
    ("indices", pa.list_(pa.int32())),
    ("labels", pa.list_(pa.string())),
    ("probabilities", pa.list_(pa.float32())),
    ("error", pa.string()),
])

Source = Union["ray.data.Dataset", str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def _has_scheme(path: str) -> bool:
    return "://" in path


def _local_images(entry: str) -> list[str]:
    """The image files an entry names: a folder's images (recursively, sorted,
    as `ravlt classify` picks them), a glob's matches, or the file itself
    (a missing file becomes an error row, as in the CLI)."""
    if os.path.isdir(entry):
        found = []
        for root, _, files in os.walk(entry):
            found += [os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
        return sorted(found)
    if glob.has_magic(entry):
        return sorted(p for p in glob.glob(entry, recursive=True) if os.path.isfile(p))
    return [entry]


def image_dataset(source: Source) -> "ray.data.Dataset":
    """A Ray Dataset of ``bytes`` and ``path`` columns for `source`: a Dataset
    with those columns (returned as it is), a folder, a glob, a file, a
    remote URI Ray reads (``s3://...``), or a list of them."""
    if isinstance(source, ray.data.Dataset):
        columns = source.columns() or []
        missing = [c for c in ("bytes", "path") if c not in columns]
        if missing:
            raise ravlt.Error(
                f"source: the Dataset has no {' or '.join(missing)} column (its columns: "
                f"{', '.join(columns)}); read it with "
                "ray.data.read_binary_files(..., include_paths=True)")
        return source
    entries = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    paths: list[str] = []
    for entry in map(os.fspath, entries):
        paths += [entry] if _has_scheme(entry) else _local_images(entry)
    if not paths:
        raise ravlt.Error(f"source: no images found in {', '.join(map(os.fspath, entries))} "
                          "(JPEG, PNG or BMP files, folders or globs of them)")
    missing, present = [], []
    for p in paths:
        (present if _has_scheme(p) or os.path.exists(p) else missing).append(p)
    parts = []
    if present:
        parts.append(ray.data.read_binary_files(present, include_paths=True))
    if missing:
        # Read by no one: each becomes an error row (the CLI's error line).
        parts.append(ray.data.from_items([{"bytes": None, "path": p} for p in missing]))
    return parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])


class ClassifyBatch:
    """The callable class of ``map_batches``: loads the model once per actor
    (from its path: a Model maps its file and is not picklable) and
    classifies a pandas batch of ``bytes`` and ``path`` into rows of
    ``path, indices, labels, probabilities, error``."""

    def __init__(self, model_path: str, *, threads: int = 1, top_k: int = 5,
                 batch_size: int = 64, cache_dir: Optional[str] = None):
        self.model = ravlt.Model.load(model_path, cache_dir=cache_dir)
        self.classifier = ravlt.Classifier(self.model, top_k=top_k, threads=threads,
                                           batch_size=batch_size)

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        paths = [str(p) for p in batch["path"]]
        # A file no read task could read has no bytes: the classifier opens
        # its path and reports why it cannot.
        items = [b if isinstance(b, (bytes, bytearray, memoryview)) else p
                 for b, p in zip(batch["bytes"], paths)]
        results = self.classifier.classify(items, names=paths)
        rows = {"path": paths, "indices": [], "labels": [], "probabilities": [], "error": []}
        for result in results:
            failed = isinstance(result, ravlt.Error)
            rows["indices"].append([] if failed else [p.index for p in result])
            rows["labels"].append([] if failed else [p.label for p in result])
            rows["probabilities"].append([] if failed else [float(p.probability) for p in result])
            rows["error"].append(str(result) if failed else None)
        return pa.Table.from_pydict(rows, schema=SCHEMA)


def classify(source: Source, model_path: Union[str, os.PathLike], *, batch_size: int = 64,
             concurrency: int = 2, threads_per_actor: int = 1,
             num_cpus_per_actor: Optional[float] = None, top_k: int = 5,
             cache_dir: Optional[Union[str, os.PathLike]] = None) -> "ray.data.Dataset":
    """Classifies every image of `source` on the Ray cluster; returns a lazy
    Dataset of rows ``path: str, indices: list[int], labels: list[str],
    probabilities: list[float], error: str or None`` (an image that cannot be
    read or decoded is a row with `error` set, never a failed job).

    source: a Dataset with ``bytes`` and ``path`` columns
    (``ray.data.read_binary_files(..., include_paths=True)``), or a folder,
    glob, file or list of them. model_path: a .rvlt classifier every node can
    read at that path; each actor loads it once. concurrency: actors, each
    running the network with threads_per_actor threads on batch_size images
    at a time and reserving num_cpus_per_actor CPUs (default:
    threads_per_actor). Ray's read tasks need CPUs too: on a small machine
    start Ray with more logical CPUs than the actors reserve
    (``ray.init(num_cpus=4)`` on 2 cores) or give actors fractions of one.
    cache_dir: a directory on each node for the packed weights
    (``ravlt.Model.load``'s cache_dir): the first actor on a node writes
    them, the later ones start sooner.
    """
    model_path = checked_classifier(model_path)
    if batch_size < 1 or concurrency < 1 or threads_per_actor < 1 or top_k < 1:
        raise ravlt.Error("batch_size, concurrency, threads_per_actor and top_k must be at least 1")
    cpus = threads_per_actor if num_cpus_per_actor is None else num_cpus_per_actor
    return image_dataset(source).map_batches(
        ClassifyBatch,
        fn_constructor_kwargs={"model_path": model_path, "threads": threads_per_actor,
                               "top_k": top_k, "batch_size": batch_size,
                               "cache_dir": None if cache_dir is None else os.fspath(cache_dir)},
        batch_size=batch_size,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=cpus,
    )
