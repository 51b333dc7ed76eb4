"""An HTTP service with Ray Serve: POST /classify, POST /embed, GET /healthz.

Each replica holds one Model and one Classifier; concurrent requests are
gathered into batches (``serve.batch``) and run on one worker thread, with
the GIL released while the engine works, so the replica's event loop keeps
accepting requests.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

import ravlt

from ._model_file import checked_classifier

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
# The most classes one request may ask for (?top_k=N).
MAX_TOP_K = 100


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, refusing (without reading it all) one above `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@serve.deployment(name="ravlt", max_ongoing_requests=32)
class ClassifierService:
    """A Ray Serve deployment answering image classification and embedding
    requests with one ravlt Classifier per replica."""

    def __init__(self, model_path: str, *, threads: int = 1,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, cache_dir: Optional[str] = None):
        self.model = ravlt.Model.load(model_path, cache_dir=cache_dir)
        self.max_top_k = max(1, min(MAX_TOP_K, self.model.num_classes))
        self.classifier = ravlt.Classifier(self.model, top_k=self.max_top_k, threads=threads)
        self.max_body_bytes = max_body_bytes
        self.name = os.path.basename(model_path)
        # One worker: the Classifier runs one call at a time.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ravlt")

    async def _run(self, method, bodies: list):
        # Errors name the request's body, not its place in the batch.
        call = functools.partial(method, bodies, names=["body"] * len(bodies))
        return await asyncio.get_running_loop().run_in_executor(self.worker, call)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def _classify(self, bodies: list) -> list:
        return await self._run(self.classifier.classify, bodies)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def _embed(self, bodies: list) -> list:
        rows, errors = await self._run(self.classifier.embed, bodies)
        return [err if err is not None else row for row, err in zip(rows, errors)]

    async def __call__(self, request: Request) -> JSONResponse:
        path = request.url.path.rstrip("/") or "/"
        if path == "/healthz":
            if request.method != "GET":
                return _error(405, "use GET /healthz")
            return JSONResponse({"status": "ok", "model": self.name,
                                 "outputs": self.model.outputs})
        if path not in ("/classify", "/embed"):
            return _error(404, f"no route {path}: POST /classify, POST /embed, GET /healthz")
        if request.method != "POST":
            return _error(405, f"use POST {path} with the image file as the body")
        top_k = min(5, self.max_top_k)
        if path == "/classify" and "top_k" in request.query_params:
            text = request.query_params["top_k"]
            if not text.isdigit() or not 1 <= int(text) <= self.max_top_k:
                return _error(400, f"top_k: expected an integer from 1 to {self.max_top_k}, "
                                   f"got {text!r}")
            top_k = int(text)
        try:
            body = await _read_body(request, self.max_body_bytes)
        except BodyTooLarge:
            return _error(413, f"body larger than {self.max_body_bytes} bytes")
        if not body:
            return _error(400, "empty body: send the image file's bytes")
        if path == "/embed":
            result = await self._embed(body)
            if isinstance(result, ravlt.Error):
                return _error(400, str(result))
            return JSONResponse({"embedding": [float(v) for v in result]})
        result = await self._classify(body)
        if isinstance(result, ravlt.Error):
            return _error(400, str(result))
        top = result[:top_k]
        return JSONResponse({"indices": [p.index for p in top],
                             "labels": [p.label for p in top],
                             "probabilities": [float(p.probability) for p in top]})


def app(model_path, *, num_replicas: Optional[int] = 1, autoscaling_config: Optional[dict] = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, threads_per_replica: int = 1,
        cache_dir=None):
    """A Ray Serve application classifying images over HTTP; run it with
    ``serve.run(app(...), route_prefix="/")``.

    POST /classify (the body: an image file's bytes; ?top_k=N, default 5)
    answers {"indices", "labels", "probabilities"}; POST /embed answers
    {"embedding"}; GET /healthz answers {"status": "ok"}. A body that is not
    an image is HTTP 400 with {"error": message}; one above max_body_bytes is
    HTTP 413. num_replicas, or autoscaling_config (Ray Serve's), set the
    replicas; each reserves threads_per_replica CPUs and runs the network
    with as many threads. cache_dir: a directory on each node for the
    packed weights (``ravlt.Model.load``'s cache_dir), so that replicas
    after a node's first start sooner (autoscaling).
    """
    model_path = checked_classifier(model_path)
    if max_body_bytes < 1 or threads_per_replica < 1:
        raise ravlt.Error("max_body_bytes and threads_per_replica must be at least 1")
    options = {"ray_actor_options": {"num_cpus": threads_per_replica}}
    if autoscaling_config is not None:
        options["autoscaling_config"] = autoscaling_config
        options["num_replicas"] = "auto" if num_replicas in (None, 1) else num_replicas
    else:
        options["num_replicas"] = num_replicas
    return ClassifierService.options(**options).bind(
        model_path, threads=threads_per_replica, max_body_bytes=max_body_bytes,
        cache_dir=None if cache_dir is None else os.fspath(cache_dir))
