"""RAVLT inference engine.

Load a converted model, run it on numpy arrays, classify or embed images::

    import ravlt
    model = ravlt.Model.load("ravlt_t.rvlt")
    session = ravlt.Session(model, threads=2)
    logits = session.run(x)                  # x: float32 (N, 3, H, W)
    outputs = session.run_all(x)             # {"logits": ..., "embedding": ...}

    classifier = ravlt.Classifier(model, top_k=5)
    for result in classifier.classify(["cat.jpg", open("dog.png", "rb").read()]):
        if isinstance(result, ravlt.Error):
            print("failed:", result)
        else:
            print([(p.label, p.probability) for p in result])

Every failure is a ravlt.Error (a RuntimeError) with a one-line message. The
GIL is released while the engine works. Ray integration: ravlt.ray (needs
the "ray" extra: pip install ".[ray]").
"""

from ._ravlt import (
    Classifier,
    Error,
    Model,
    Prediction,
    Session,
    __version__,
    convert,
    device_available,
    device_description,
    load_image,
    precision_available,
)

__all__ = [
    "Classifier",
    "Error",
    "Model",
    "Prediction",
    "Session",
    "__version__",
    "convert",
    "device_available",
    "device_description",
    "load_image",
    "precision_available",
]
