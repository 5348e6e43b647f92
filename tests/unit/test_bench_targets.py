"""The benchmark's verdict: targets at N = 50 from medians, and which runs make it incomplete."""

from __future__ import annotations

from bench import rotate

TOOLS = ["origin-agent", "origin-agent-noop", "floor", "ansible"]


def session(walls: dict[str, list[float]], n: int = 50, verified: bool = True) -> rotate.Session:
    s = rotate.Session()
    for tool, values in walls.items():
        for i, wall in enumerate(values):
            s.runs.append(
                rotate.Run(
                    tool=tool,
                    n=n,
                    round=i + 1,
                    wall=wall,
                    peak_mib=70.0,
                    procs=1,
                    verified=verified or tool != "floor" or i > 0,
                )
            )
    s.trips[n] = {"rotation": {"hosts": n, "max": 2}, "no-op": {"hosts": n, "max": 1}}
    return s


def verdict(s: rotate.Session, sizes: list[int]) -> dict[str, bool | None]:
    n, rows = rotate.targets(rotate.summarize(s, sizes, TOOLS), s)
    assert n == 50
    return {text.split(":")[0]: ok for text, ok in rows}


def test_targets_come_from_the_medians_at_n_50() -> None:
    s = session(
        {
            "origin-agent": [3.9, 3.6, 9.0],
            "origin-agent-noop": [1.3] * 3,
            "floor": [3.0, 3.2, 0.1],
            "ansible": [170.0] * 3,
        }
    )
    s.runs += session({"origin-agent": [1.0] * 3, "floor": [5.0] * 3}, n=100).runs
    got = verdict(s, [50, 100])
    assert got["full rotation within 1.3x of the floor"] is True  # 3.9 / 3.0
    assert got["over 40x faster than Ansible"] is True  # 170 / 3.9
    assert got["controller peak memory < 90 MiB"] is True


def test_a_slow_rotation_or_a_missing_tool_is_not_met_or_not_measured() -> None:
    got = verdict(
        session({"origin-agent": [4.0] * 3, "origin-agent-noop": [3.0] * 3, "floor": [3.0] * 3}),
        [50],
    )
    assert got["full rotation within 1.3x of the floor"] is False  # 1.33x
    assert got["no-op no slower than 0.8x the floor's rotation"] is False  # 1.0x
    assert got["over 40x faster than Ansible"] is None


def test_only_origin_agent_failures_and_thin_medians_make_a_run_incomplete() -> None:
    walls = {"origin-agent": [1.0] * 3, "floor": [1.0] * 4}
    assert rotate.complete(session(walls, verified=False), [50], ["origin-agent", "floor"])
    walls["floor"] = [1.0] * 3  # one of three floor runs unverified: 2 left
    assert not rotate.complete(session(walls, verified=False), [50], ["origin-agent", "floor"])
    broken = session({"origin-agent": [1.0] * 3, "floor": [1.0] * 3})
    broken.runs[0].verified = False
    assert not rotate.complete(broken, [50], ["origin-agent", "floor"])
