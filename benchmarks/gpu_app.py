"""The GPU check's load test: four Streamlit AppTest sessions of `app.py` on the device, each alone, then all
at once in threads through the app's shared device queue (no browser: the GPU machine has none)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import torch

from benchmarks.gpu_config import ROOT, Config, log


@contextlib.contextmanager
def shared_runtime():
    """Let AppTest sessions run in threads. Each `AppTest.run` installs a mock Runtime and sets it back
    to None when it ends, which would pull the runtime from under a session still running in another
    thread; here a session that finds none gets the last one installed (they are interchangeable)."""
    from streamlit.runtime.runtime import Runtime

    orig_instance, orig_exists = Runtime.__dict__["instance"], Runtime.__dict__["exists"]
    last: list = []

    def instance(cls):
        if cls._instance is not None:
            last[:] = [cls._instance]
            return cls._instance
        if last:
            return last[0]
        return orig_instance.__func__(cls)

    def exists(cls):
        return cls._instance is not None or bool(last)

    Runtime.instance, Runtime.exists = classmethod(instance), classmethod(exists)
    try:
        yield
    finally:
        Runtime.instance, Runtime.exists = orig_instance, orig_exists


def app_session(query: dict, timeout: float) -> dict:
    """One visitor: open the app with a link, let it run (a first visit runs by itself; else press Run)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for k, v in {"image": "chelsea", "preset": "default", **query}.items():
        at.query_params[k] = str(v)
    t = time.perf_counter()
    out = {"config": query}
    try:
        at.run()

        def shown():
            try:  # the Invert page's run (`core.jobs.LiveRun`): its first shown row's result
                rows = at.session_state["inv_live"].rows
            except (KeyError, AttributeError):
                return None
            return rows[0].result if rows else None

        clicked = False
        if shown() is None and not at.exception:
            clicked = True
            at.button(key="inv_run").click().run()
        res = shown()
        out.update(seconds=time.perf_counter() - t, clicked_run=clicked,
                   errors=[e.value for e in at.error], exceptions=[str(e.value)[:500] for e in at.exception],
                   warnings=[w.value[:200] for w in at.warning])
        if res is not None:
            out.update(steps_done=res.steps_done, seeds=len(res.seeds), device=res.device,
                       engine_seconds=res.seconds, clarity=res.metrics.get("clarity"))
        out["ok"] = res is not None and not out["errors"] and not out["exceptions"]
    except Exception as exc:  # noqa: BLE001 - a session's crash is this session's result
        out.update(seconds=time.perf_counter() - t, ok=False, exceptions=[f"{type(exc).__name__}: {exc}"[:500]],
                   errors=[])
    return out


def load_test(cfg: Config) -> dict:
    """Four sessions, each alone (its own work), then all four at once through the app's shared device queue.

    Check: no session waits more than the sum of the others' work (wait = together - alone), no error.
    The result cache is emptied between the phases so the four really compute again.
    """
    import streamlit as st

    cache_dir = Path(tempfile.mkdtemp(prefix="gpu-check-runcache-"))
    os.environ["INVERSION_CACHE_DIR"] = str(cache_dir)  # before the app's first run builds its RunCache

    def empty_caches():
        shutil.rmtree(cache_dir, ignore_errors=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        st.cache_data.clear()  # the app's in-memory copies of cached results (and its estimates)

    sessions = cfg.sessions
    # st.cache_data.clear() outside a script run warns "missing ScriptRunContext" once per call: noise here
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    try:
        with shared_runtime():
            log("  warm-up: each configuration once with 10 iterations (models, imports, cuDNN)")
            warm = [app_session({**q, "iters": 10}, cfg.session_timeout_s) for q in sessions]
            for w in warm:
                if not w.get("ok"):
                    log(f"    warm-up problem: {w.get('errors')} {w.get('exceptions')}")
            empty_caches()
            alone = []
            for i, q in enumerate(sessions):
                alone.append(app_session(q, cfg.session_timeout_s))
                log(f"  session {i} alone: {alone[-1]['seconds']:.2f} s ({'ok' if alone[-1]['ok'] else 'NOT ok'})")
            empty_caches()
            together: list = [None] * len(sessions)
            barrier = threading.Barrier(len(sessions) + 1)

            def worker(i):
                barrier.wait()
                together[i] = app_session(sessions[i], cfg.session_timeout_s)

            queue_seen = {"max_waiting": 0, "max_running": 0}
            threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(sessions))]
            for th in threads:
                th.start()
            barrier.wait()
            t = time.perf_counter()
            try:
                from core.jobs.queue import queue_for

                queue = queue_for(str(torch.device(sessions[0]["device"])))
            except Exception:  # noqa: BLE001 - the queue's state is evidence, not a requirement
                queue = None
            while any(th.is_alive() for th in threads):
                if queue is not None:
                    s = queue.state()
                    queue_seen["max_waiting"] = max(queue_seen["max_waiting"], s["waiting"])
                    queue_seen["max_running"] = max(queue_seen["max_running"], s["running"])
                time.sleep(0.01)
            wall = time.perf_counter() - t
            for th in threads:
                th.join()
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    rows, ok_all = [], True
    for i, (a, g) in enumerate(zip(alone, together)):
        others = sum(x["seconds"] for j, x in enumerate(alone) if j != i)
        waited = g["seconds"] - a["seconds"]
        error_free = bool(a.get("ok") and g.get("ok"))
        fine = error_free and waited <= others
        ok_all &= fine
        rows.append({"session": i, "config": sessions[i], "alone_s": a["seconds"], "together_s": g["seconds"],
                     "waited_s": waited, "others_work_s": others, "error_free": error_free, "ok": fine,
                     "alone": a, "together": g})
        log(f"  session {i}: alone {a['seconds']:.2f} s, together {g['seconds']:.2f} s, waited {waited:.2f} s "
            f"<= others' work {others:.2f} s: {waited <= others}; errors {g.get('errors')} {g.get('exceptions')}")
    log(f"  four at once: {wall:.2f} s wall; queue seen with up to {queue_seen['max_waiting']} waiting")
    return {"sessions": rows, "wall_s": wall, "queue": queue_seen, "pass": ok_all,
            "warmup": [{"ok": w.get("ok"), "seconds": w.get("seconds"), "errors": w.get("errors"),
                        "exceptions": w.get("exceptions")} for w in warm]}
