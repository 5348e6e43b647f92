"""Run the origin-agent CLI in this process under cProfile, every thread profiled, and write the
merged statistics.

    python -m bench.profile_run OUT.pstats [--top N] -- run PLAN -i INV ...

cProfile sees only the thread that enabled it; here each new thread enables its own profiler
as it starts (``threading.setprofile``) and all of them are merged at the end. The top entries
(by own time, then by cumulative time) are printed on stderr. The clock is each thread's CPU
time (``time.thread_time``): waiting costs nothing here. cProfile slows Python-heavy code
more than C calls, so quote its proportions, not its seconds.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
import time
from types import FrameType
from typing import Any


def main(argv: list[str]) -> int:
    out_path, rest = argv[0], argv[argv.index("--") + 1 :]
    top = int(argv[argv.index("--top") + 1]) if "--top" in argv[: argv.index("--")] else 25
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(frame: FrameType, event: str, arg: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook in the new thread

    from agent.cli import main as cli_main

    threading.setprofile(start)
    main_profile = cProfile.Profile(time.thread_time)
    profiles.append(main_profile)
    main_profile.enable()
    try:
        code = cli_main(rest)
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    finally:
        main_profile.disable()
        threading.setprofile(None)
    with lock:
        done = list(profiles)
    stats = pstats.Stats(done[0])
    for profile in done[1:]:
        profile.disable()
        stats.add(profile)
    stats.dump_stats(out_path)
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(text.getvalue(), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
