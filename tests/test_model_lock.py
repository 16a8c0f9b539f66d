"""Tracing in one thread while another runs an inversion: the lock keeps them apart."""

import threading
import time

import torch

from core import Encoder, Inversion, get_preset, load_model
from core.models.lock import MODEL_LOCK, RWLock, stepped


def test_rwlock_readers_share_writers_wait():
    lock = RWLock()
    inside = []
    with lock.shared(), lock.shared():
        t = threading.Thread(target=lambda: lock.exclusive().__enter__() or inside.append("w"))
        t.start()
        time.sleep(0.05)
        assert inside == []  # the writer waits for both readers
    t.join(2)
    assert inside == ["w"]


def test_tracing_beside_a_running_inversion():
    model = load_model("resnet18", "untrained", 32)
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    with MODEL_LOCK.exclusive():
        run = Inversion(model, "layer2", image, [0, 1], get_preset("default", iters=60), "cpu")
    errors, snaps = [], []

    def runner():
        try:
            snaps.extend(stepped(run, every=20))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def tracer():
        try:
            for layer in ("layer1", "layer3", "maxpool", "layer4"):
                with MODEL_LOCK.exclusive():
                    Encoder(model, layer)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=runner), threading.Thread(target=tracer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert [s.step for s in snaps] == [20, 40, 60]


# --------------------------------------------------------------------------- the lock lives in core now


def test_lock_is_reentrant_and_refuses_an_upgrade_instead_of_deadlocking():
    lock = RWLock()
    with lock.exclusive():
        with lock.exclusive(), lock.shared():  # stop_shapes -> Encoder; Inversion -> encode
            pass
        assert lock.state()["writer"]
    assert lock.state() == {"readers": 0, "writer": False, "writers_waiting": 0}
    with lock.shared():
        # a writer waiting must not block this thread's nested shared (writer preference would deadlock)
        t = threading.Thread(target=lambda: lock.exclusive().__enter__())
        t.start()
        time.sleep(0.05)
        assert lock.state()["writers_waiting"] == 1
        with lock.shared():
            pass
        try:
            with lock.exclusive():
                raise AssertionError("a shared holder must not get the exclusive lock")
        except RuntimeError as exc:
            assert "holds shared" in str(exc)
    t.join(2)
    assert not t.is_alive()


def test_core_takes_the_lock_itself_no_caller_locking():
    """Threads that only call core (like the CLI, benchmarks or a script) trace encoders, list nodes and
    shapes while others run steps, predict and take results: no 'not installed as a submodule' errors."""
    from core.models.classify import predict
    from core.models.encoder import _NODE_CACHE, _SHAPE_CACHE, graph_nodes, stop_shapes

    model = load_model("resnet18", "untrained", 32)
    lite = load_model("efficientnet_lite0", "trained", 32)
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    errors, done = [], []

    def guarded(fn):
        def wrapper():
            try:
                fn()
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
        return wrapper

    def runner(seed):
        run = Inversion(model, "layer2", image, [seed], get_preset("default", iters=40), "cpu")
        for _ in run.snapshots(every=5):
            pass
        done.append(run.result().steps_done)

    def tracer():
        for layer in ("layer1", "layer3", "maxpool", "layer4", "layer2.0.conv1"):
            Encoder(model, layer)
        for m in (model, lite):
            for key in [k for k in _NODE_CACHE if k[0] == m.arch.name]:
                _NODE_CACHE.pop(key, None)
            for key in [k for k in _SHAPE_CACHE if k[0] == m.arch.name]:
                _SHAPE_CACHE.pop(key, None)
            graph_nodes(m)
            stop_shapes(m, 32)  # re-entrant: takes exclusive, builds an Encoder (exclusive again), encodes

    def predictor():
        for _ in range(15):
            assert len(predict(lite, torch.rand(2, 3, 32, 32))) == 2

    threads = [threading.Thread(target=guarded(lambda s=s: runner(s))) for s in (0, 1)]
    threads += [threading.Thread(target=guarded(tracer)), threading.Thread(target=guarded(predictor))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors, errors
    assert done == [40, 40]
    assert MODEL_LOCK.state() == {"readers": 0, "writer": False, "writers_waiting": 0}
