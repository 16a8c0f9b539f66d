"""Jobs: the one run pipeline. A `RunSpec` in, a finished result out, through the cache, the device's queue,
the executor (`executor`: batches that fit the device, out-of-memory retry); a run a person drives
(`LiveRun`: Stop, Finish, Continue); how long a run will take (`estimate`); and the settings a person
chooses for a run, declared once (`settings`).

Every result the project shows comes from `run` (or `run_stops` for several stops as one batch).
"""

from core.jobs.cache import RunCache, file_hash, image_hash
from core.jobs.spec import RunSpec
from core.jobs.settings import SETTINGS, RunSettings
from core.jobs.queue import Ahead, queue_for
from core.jobs.estimate import Countdown, Estimate, calibrated, human, measure, suggest_cheaper
from core.jobs.forecast import PROBE_STEPS, PlanTime, plan_time, time_text
from core.jobs.uploads import UploadStore, is_upload_id, upload_id
from core.jobs.pipeline import Callbacks, default_cache, device_slot, run, snapshot_every
from core.jobs.live import LiveRow, LiveRun

__all__ = [
    "Ahead", "calibrated", "Callbacks", "Countdown", "default_cache", "device_slot", "Estimate", "file_hash",
    "human", "image_hash", "is_upload_id", "LiveRow", "LiveRun", "measure", "plan_time", "PlanTime", "PROBE_STEPS",
    "queue_for", "run", "RunCache", "RunSettings", "RunSpec", "SETTINGS", "snapshot_every", "suggest_cheaper",
    "time_text",
    "upload_id", "UploadStore",
]
