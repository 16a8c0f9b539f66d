"""Tracing in one thread while another runs an inversion: the lock keeps them apart."""

import threading
import time

import torch

from core import Encoder, Inversion, get_preset, load_model
from core.modellock import MODEL_LOCK, RWLock, stepped


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
