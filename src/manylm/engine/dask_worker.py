"""What manylm installs on the Dask workers it runs on: a plugin that warms them up.

Imported only when running on Dask (it needs ``distributed``).
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from manylm.engine.dask_tasks import warm_up

__all__ = ["WarmUp"]


class WarmUp(WorkerPlugin):
    """Runs :func:`~manylm.engine.dask_tasks.warm_up` on every worker as it joins.

    Registered by :func:`manylm.engine.dask_backend.connect`, so that each worker loads the
    compiled kernels once, at the cluster's start-up (or when it joins later, e.g. a
    replacement for a lost worker), instead of inside the first chunk it fits. On a client
    of your own: ``client.register_plugin(WarmUp())``.
    """

    name = "manylm-warm-up"

    def setup(self, worker: Any) -> None:
        warm_up()
