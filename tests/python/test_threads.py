"""Threads: Sessions of one Model in parallel Python threads (the GIL
released while the engine runs), and the guard on a Session shared by two."""

import threading
import time

import numpy as np
import pytest

import ravlt
from conftest import random_input


@pytest.fixture(scope="module")
def t_model(models):
    return ravlt.Model.load(models["t"])


def test_four_threads_each_with_a_session_equal_a_lone_run(t_model):
    inputs = [random_input((1, 3, 96, 80), seed=i) for i in range(4)]
    lone = ravlt.Session(t_model, threads=1)
    expected = [lone.run(x) for x in inputs]
    results = [None] * 4
    errors = []

    def work(i):
        try:
            s = ravlt.Session(t_model, threads=1)
            for _ in range(3):
                results[i] = s.run(inputs[i])
        except Exception as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    for got, want in zip(results, expected):
        assert np.array_equal(got, want)


def test_the_gil_is_released_while_the_engine_runs(t_model):
    """A Python thread keeps running while another waits in Session.run: with
    the GIL held it could not take a step until the run returned."""
    session = ravlt.Session(t_model, threads=1)
    x = random_input((2, 3, 224, 224), seed=1)
    session.run(x)  # plan outside the measurement
    done = threading.Event()
    steps_during_run = []

    def counter():
        n = 0
        while not done.is_set():
            n += 1
            time.sleep(0.001)
        steps_during_run.append(n)

    started = time.perf_counter()
    t = threading.Thread(target=counter)
    t.start()
    session.run(x)
    elapsed = time.perf_counter() - started
    done.set()
    t.join()
    # At least one step per 20 ms of the run (sleep(0.001) takes about 1 ms).
    assert steps_during_run[0] >= max(3, elapsed / 0.02), (steps_during_run, elapsed)


def test_a_session_shared_by_two_threads_is_refused(t_model):
    session = ravlt.Session(t_model, threads=1)
    big = random_input((2, 3, 224, 224), seed=2)
    small = random_input((1, 3, 64, 64), seed=3)
    session.run(big)
    session.run(small)
    finished = threading.Event()
    refused = []

    def long_run():
        done = 0
        deadline = time.monotonic() + 120
        while done < 3 and time.monotonic() < deadline:
            try:
                session.run(big)
                done += 1
            except ravlt.Error:  # the other thread had it: try again
                pass
        finished.set()

    t = threading.Thread(target=long_run)
    t.start()
    while not finished.is_set():
        try:
            session.run(small)
        except ravlt.Error as e:
            refused.append(str(e))
        time.sleep(0.002)
    t.join()
    assert refused, "a second thread ran the session while the first did"
    assert refused[0].startswith("Session in use by another thread")
    assert "make one per thread" in refused[0]
    session.run(small)  # usable again once free


def test_a_classifier_shared_by_two_threads_is_refused(models, digit_files):
    c = ravlt.Classifier(ravlt.Model.load(models["digits"]), threads=1, batch_size=8)
    finished = threading.Event()
    refused = []

    def long_call():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                c.classify(digit_files)
                break
            except ravlt.Error:  # the other thread had it: try again
                pass
        finished.set()

    t = threading.Thread(target=long_call)
    t.start()
    while not finished.is_set():
        try:
            c.classify(digit_files[:1])
        except ravlt.Error as e:
            refused.append(str(e))
        time.sleep(0.002)
    t.join()
    assert refused and refused[0].startswith("Classifier in use by another thread")
