"""Runs one job's command and writes its seconds and peak memory to a JSON file.

Started by `LocalJobRunner` as `python -I -S measured_child.py USAGE_FILE COMMAND...`, with
the job's environment, working directory and log. It exists because Linux carries a
process's memory high-water mark across `exec` (`ru_maxrss` takes the peak of the image
it replaces), so a job started straight from the local driver would report at least the
driver's own few hundred MB. Spawned from this small process, the job reports its own.
Standard library only, and no `site` (-S): it must stay small to measure small jobs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def main(argv: list[str]) -> int:
    usage_file, command = argv[0], argv[1:]
    started = time.monotonic()
    stopping = (signal.SIGTERM, signal.SIGINT)
    # Held back until the handlers below are in place: a stop arriving in between would
    # otherwise end this process and leave the job running. The job starts unblocked.
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    pid = os.posix_spawnp(command[0], command, dict(os.environ), setsigmask=())

    def forward(signum: int, frame: object) -> None:
        os.kill(pid, signum)  # the driver stops the job through us

    for signum in stopping:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)
    _, status, usage = os.wait4(pid, 0)
    record = {"seconds": round(time.monotonic() - started, 3), "peak_memory_mb": round(usage.ru_maxrss / 1024, 1)}
    with open(usage_file, "w") as out:  # ru_maxrss is in KiB on Linux
        json.dump(record, out)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # killed by signal N: the shell's 128 + N


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
