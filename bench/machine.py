"""What every benchmark writes down about the machine it ran on (docs/benchmarks.md asks for
the machine and date beside each figure)."""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def facts() -> dict[str, Any]:
    """CPU, cores, architecture, Python (the build too: the Philly replay ran 1.12-1.14x
    faster on Debian's optimised CPython than on pyenv's default build; docs/benchmarks.md),
    load and the time of the run."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": str(Path(sys.executable).resolve()),
        "python_configure": sysconfig.get_config_var("CONFIG_ARGS") or "",
        "load_average_1_5_15": os.getloadavg(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
