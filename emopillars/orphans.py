"""Processes spawned by a run end with it, even when it is killed outright (SIGKILL, the out-of-memory killer).

vLLM runs its engine in a spawned process that talks to ours over sockets and never checks that we are still
there: after a SIGKILL of `emopillars synth` it ran on for good, busy. A spawned child imports the parent's main
module (the CLI, or a script that imports emopillars) before anything else, so importing `emopillars` there asks
Linux to send the child SIGTERM, which vLLM's engine answers by shutting down, when the thread that started it ends.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> None:
    """In a process `multiprocessing` spawned on Linux, take SIGTERM when the parent thread ends; elsewhere nothing."""
    # `sys.argv` is the parent's by now (spawn copies it over); the child's own command line ends with this flag
    if not sys.platform.startswith("linux") or sys.orig_argv[-1:] != ["--multiprocessing-fork"]:
        return
    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        return  # refused (a sandbox): the child lives as it did before
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)
