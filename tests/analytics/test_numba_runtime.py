"""The numba runtime the deployment relies on (README "Deployment", docs/analytics-integration.md).

The kernels themselves are serial and run on a thread pool, so they load no numba threading
layer; anything in the project that uses ``parallel=True`` must get the TBB layer (Debian
libtbb12), which stays correct after gunicorn forks. Checked in a fresh interpreter, because a
process picks its threading layer once.
"""

from __future__ import annotations

import os
import subprocess
import sys

PROGRAM = """
import numpy as np
from numba import njit, prange, threading_layer

@njit(parallel=True, cache=False)
def total(a):
    s = 0.0
    for i in prange(a.shape[0]):
        s += a[i]
    return s

print(total(np.ones(10_000)), threading_layer())
"""


def test_parallel_kernels_run_on_the_tbb_threading_layer(tmp_path):
    env = dict(os.environ, NUMBA_THREADING_LAYER="tbb", NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10000.0", "tbb"]
