"""The wrapper every local rank runs in: `python rank.py FOLDER INDEX -- COMMAND...` (ADR 0021).

It writes its process id to `rank-INDEX.pid` before starting the command, waits for it, and
writes the command's exit code and the instant it ended to `rank-INDEX.exit` (a temporary
file, then a rename). A service that restarts after a crash finds its runs again from these
files (B6): the process group to signal, and how each rank ended even though the service
was not there to see it. The wrapper ignores nothing: the checkpoint signal reaches the
command directly (the whole process group gets it); the wrapper only outlives it to record
the code. Standard library only, so it starts fast.
"""

import json
import os
import signal
import subprocess
import sys
import time


def _write(path: str, data: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def main() -> int:
    folder, index, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        print("usage: rank.py FOLDER INDEX -- COMMAND...", file=sys.stderr)
        return 2
    base = os.path.join(folder, f"rank-{index}")
    _write(base + ".pid", str(os.getpid()))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)  # the command handles it; we only record its end
    try:
        child = subprocess.Popen(command, restore_signals=True)
    except OSError as error:
        print(f"kizuna: cannot start {command[0]!r}: {error.strerror}", file=sys.stderr)
        code = 127 if isinstance(error, FileNotFoundError) else 126
    else:
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
    _write(base + ".exit", json.dumps({"code": code, "ended": time.time()}))
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(main())  # no interpreter teardown: the executor learns of the end at once
