"""ravlt on Ray: batch classification with Ray Data, an HTTP service with Ray Serve.

Importing this module imports Ray (the "ray" extra: ``pip install ".[ray]"``);
``import ravlt`` alone does not.

Batch (Ray Data)::

    import ray, ravlt.ray
    ray.init(num_cpus=4)   # leave CPUs for Ray's read tasks beside the actors
    ds = ravlt.ray.classify("images/", "model.rvlt", concurrency=2)
    ds.write_parquet("results.parquet")

Online (Ray Serve)::

    from ray import serve
    serve.run(ravlt.ray.app("model.rvlt", num_replicas=2), route_prefix="/")
    # POST /classify (body: the image file), POST /embed, GET /healthz

Command lines: ``python -m ravlt.ray.batch`` and ``python -m ravlt.ray.serve``.
"""

from .data import ClassifyBatch, classify, image_dataset
from .serving import ClassifierService, app

__all__ = ["ClassifierService", "ClassifyBatch", "app", "classify", "image_dataset"]
