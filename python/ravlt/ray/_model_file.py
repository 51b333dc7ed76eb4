"""The model file a Ray job or service is given: checked once, in the driver."""

import os

import ravlt


def checked_classifier(model_path) -> str:
    """The absolute path of a readable classifier model file; a ravlt.Error
    here, in the driver, rather than in every actor."""
    model_path = os.path.abspath(os.fspath(model_path))
    if not os.path.isfile(model_path):
        raise ravlt.Error(f"{model_path}: no such model file")
    model = ravlt.Model.load(model_path, verify_checksum=False)  # each actor verifies it
    if model.kind != "classifier":
        raise ravlt.Error(f"{model_path} is a {model.kind}: it has no classes to classify into")
    return model_path
