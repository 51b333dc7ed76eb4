"""How the commands (batch, serve) reach Ray."""

import os

import ray


def connect(address, cpus_needed: int) -> None:
    """Joins the cluster at `address` ("auto": the running one), or starts a
    local Ray instance with at least `cpus_needed` logical CPUs (more than the
    machine's cores when the actors and Ray's own tasks need them)."""
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=max(os.cpu_count() or 1, cpus_needed))
