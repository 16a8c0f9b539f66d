"""Jobs: the one run pipeline. A `RunSpec` in, a finished result out, through the cache, the device's queue,
memory planning and out-of-memory retry; how long a run will take (`estimate`); and the settings a person
chooses for a run, declared once (`settings`).

Every result the project shows comes from `run` (or `run_stops` for several stops as one batch).
"""

from core.jobs.cache import RunCache, file_hash, image_hash
from core.jobs.spec import KEY_FORMAT, RunSpec, library_versions
from core.jobs.settings import SETTINGS, RunSettings, Setting, setting
from core.jobs.queue import Ahead, QueueTimeout, RunQueue, queue_for
from core.jobs.memory import activation_bytes, max_batch_for, plan_chunks, run_resilient, seed_step_bytes, split
from core.jobs.estimate import (Countdown, Estimate, calibrated, correction, human, measure, plan_seconds,
                                 record_actual, remaining, speed_for, suggest_cheaper)
from core.jobs.forecast import PROBE_STEPS, PlanTime, Probe, plan_time, time_text
from core.jobs.uploads import UploadStore, is_upload_id, upload_id
from core.jobs.pipeline import Callbacks, Job, default_cache, device_slot, lookup, run, run_stops, snapshot_every

__all__ = [
    "Ahead", "Callbacks", "Countdown", "Estimate", "Job", "KEY_FORMAT", "QueueTimeout", "RunCache", "RunQueue",
    "RunSettings", "RunSpec", "SETTINGS", "Setting", "setting",
    "activation_bytes", "calibrated", "correction", "default_cache", "device_slot", "file_hash", "human", "image_hash",
    "library_versions", "lookup", "max_batch_for", "measure", "plan_seconds", "plan_chunks", "queue_for", "record_actual", "remaining",
    "run", "run_resilient", "run_stops", "seed_step_bytes", "snapshot_every", "speed_for", "split", "suggest_cheaper",
    "UploadStore", "is_upload_id", "upload_id", "PROBE_STEPS", "PlanTime", "Probe", "plan_time", "time_text",
]
