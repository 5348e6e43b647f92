"""The runner on real local connections: batches, thresholds, unreachable hosts, handlers,
check mode, tags, forks, one connection per host."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ConnectError
from agent.inventory.model import Host
from agent.plan.load import load_yaml_text
from agent.plan.parse import PlanErrors, parse_plan
from agent.report.events import BatchAborted, BatchStarted, HostUnreachable, ListReporter, TaskDone
from agent.runner.engine import Runner, RunOptions, RunResult
from agent.transport.base import Result
from agent.transport.local import LocalConnection


class CountingConnection(LocalConnection):
    """The local transport, counting opens, closes and concurrent commands (shared stats)."""

    def __init__(self, host: str, stats: dict[str, Any]) -> None:
        super().__init__(host)
        self.stats = stats
        with stats["lock"]:
            stats["opened"][host] = stats["opened"].get(host, 0) + 1

    def run(self, argv: Any, **kw: Any) -> Result:
        with self.stats["lock"]:
            self.stats["active"] += 1
            self.stats["peak"] = max(self.stats["peak"], self.stats["active"])
        try:
            return super().run(argv, **kw)
        finally:
            with self.stats["lock"]:
                self.stats["active"] -= 1

    def close(self) -> None:
        with self.stats["lock"]:
            self.stats["closed"][self.host] = self.stats["closed"].get(self.host, 0) + 1


def make_stats() -> dict[str, Any]:
    return {"lock": threading.Lock(), "opened": {}, "closed": {}, "active": 0, "peak": 0}


def run(
    text: str,
    hosts: list[Host],
    tmp_path: Path,
    *,
    down: frozenset[str] = frozenset(),
    stats: dict[str, Any] | None = None,
    **opts: Any,
) -> tuple[RunResult, ListReporter]:
    plan_path = tmp_path / "plan.yml"
    plan_path.write_text(text)
    plan = parse_plan(load_yaml_text(text, str(plan_path)), str(plan_path))
    reporter = ListReporter()
    stats = stats if stats is not None else make_stats()

    def connect(host: Host) -> CountingConnection:
        if host.name in down:
            raise ConnectError("connection refused", host=host.name)
        return CountingConnection(host.name, stats)

    result = Runner(plan, lambda pattern: hosts, connect, reporter, RunOptions(**opts)).run()
    return result, reporter


def fleet(tmp_path: Path, n: int, **extra: Any) -> list[Host]:
    return [
        Host(f"h{i}", {"out": str(tmp_path / f"h{i}"), **extra.get(f"h{i}", {})})
        for i in range(1, n + 1)
    ]


CONVERGE = """\
- hosts: all
  tasks:
    - file: {path: "{{ out }}", state: directory}
    - copy: {dest: "{{ out }}/a", content: "a {{ inventory_hostname }}\\n"}
      notify: [h2, h1]
    - copy: {dest: "{{ out }}/b", content: "b\\n"}
      notify: h1
  handlers:
    - name: h1
      shell: echo h1 >> {{ out }}/handlers
    - name: h2
      shell: echo h2 >> {{ out }}/handlers
"""


def test_converges_then_second_run_changes_nothing(tmp_path: Path) -> None:
    hosts = fleet(tmp_path, 3)
    first, _ = run(CONVERGE, hosts, tmp_path)
    assert first.exit_code == 0
    assert [h.changed for h in first.hosts] == [5, 5, 5]
    # handlers ran once each, in handler order, after the tasks
    assert (tmp_path / "h1" / "handlers").read_text() == "h1\nh2\n"
    second, events = run(CONVERGE, hosts, tmp_path)
    assert [h.changed for h in second.hosts] == [0, 0, 0]
    assert not [e for e in events.events if isinstance(e, TaskDone) and e.handler]


def test_check_mode_changes_no_file_and_reports_what_would_change(tmp_path: Path) -> None:
    hosts = fleet(tmp_path, 2)
    run(CONVERGE, hosts, tmp_path)

    def snapshot() -> dict[Path, bytes]:
        return {
            p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "plan.yml"
        }

    before = snapshot()
    changed_plan = CONVERGE.replace('content: "b\\n"', 'content: "B\\n"')
    result, events = run(changed_plan, hosts, tmp_path, check=True, diff=True)
    assert snapshot() == before
    changed = [e for e in events.events if isinstance(e, TaskDone) and e.status == "changed"]
    assert sorted((e.host, e.changes) for e in changed if not e.handler) == [
        (h.name, (f"write {h.vars['out']}/b (2 bytes) mode=0644",)) for h in hosts
    ]
    assert all("-b\n+B" in e.diff for e in changed if not e.handler)
    assert result.exit_code == 0


def test_failure_threshold_stops_before_next_batch(tmp_path: Path) -> None:
    text = """\
- hosts: all
  serial: 2
  max_fail_percentage: 0
  tasks:
    - command: ["{{ prog }}"]
    - file: {path: "{{ out }}", state: directory}
"""
    hosts = [
        Host(h.name, {**h.vars, "prog": "false" if h.name == "h2" else "true"})
        for h in fleet(tmp_path, 5)
    ]
    result, events = run(text, hosts, tmp_path)
    assert result.exit_code == 1 and result.aborted
    batches = [e for e in events.events if isinstance(e, BatchStarted)]
    assert [b.hosts for b in batches] == [("h1", "h2")]
    aborted = [e for e in events.events if isinstance(e, BatchAborted)]
    assert aborted[0].hosts_not_run == ("h3", "h4", "h5")
    assert (tmp_path / "h1").is_dir() and not (tmp_path / "h3").exists()
    assert result.host("h2").failed == 1 and "exited 1" in result.host("h2").error
    assert result.host("h3").not_run


def test_without_threshold_all_batches_run_and_percent_serial(tmp_path: Path) -> None:
    text = """\
- hosts: all
  serial: [1, "50%"]
  tasks:
    - command: ["{{ prog }}"]
"""
    hosts = [Host(f"h{i}", {"prog": "false" if i == 1 else "true"}) for i in range(1, 6)]
    result, events = run(text, hosts, tmp_path)
    batches = [e.hosts for e in events.events if isinstance(e, BatchStarted)]
    assert batches == [("h1",), ("h2", "h3"), ("h4", "h5")]
    assert result.exit_code == 1 and not result.aborted


def test_unreachable_host_is_reported_and_others_finish(tmp_path: Path) -> None:
    hosts = fleet(tmp_path, 3)
    result, events = run(CONVERGE, hosts, tmp_path, down=frozenset({"h2"}))
    assert result.exit_code == 3
    assert result.host("h2").unreachable and result.host("h2").failed == 0
    assert "connection refused" in result.host("h2").error
    assert [e.host for e in events.events if isinstance(e, HostUnreachable)] == ["h2"]
    assert (tmp_path / "h1" / "a").exists() and (tmp_path / "h3" / "a").exists()


def test_failed_and_unreachable_together_exit_1(tmp_path: Path) -> None:
    text = "- hosts: all\n  tasks:\n    - command: ['false']\n"
    result, _ = run(text, fleet(tmp_path, 2), tmp_path, down=frozenset({"h2"}))
    assert result.exit_code == 1
    assert result.host("h1").failed and result.host("h2").unreachable


def test_one_connection_per_host_reused_and_closed(tmp_path: Path) -> None:
    stats = make_stats()
    two_plays = CONVERGE + CONVERGE.replace("/a", "/c")
    run(two_plays, fleet(tmp_path, 3), tmp_path, stats=stats)
    assert stats["opened"] == {"h1": 1, "h2": 1, "h3": 1}
    assert stats["closed"] == {"h1": 1, "h2": 1, "h3": 1}


@pytest.mark.parametrize("forks,expect_peak", [(1, 1), (3, 3)])
def test_forks_bound_the_hosts_worked_on_at_once(
    tmp_path: Path, forks: int, expect_peak: int
) -> None:
    stats = make_stats()
    text = "- hosts: all\n  tasks:\n    - command: sleep 0.3\n"
    started = time.monotonic()
    result, _ = run(text, fleet(tmp_path, 6), tmp_path, stats=stats, forks=forks)
    assert result.exit_code == 0
    assert stats["peak"] == expect_peak
    assert time.monotonic() - started >= 0.3 * 6 / forks - 0.05


def test_tags_and_skip_tags_select_tasks(tmp_path: Path) -> None:
    text = """\
- hosts: all
  tasks:
    - {file: {path: "{{ out }}", state: directory}, tags: [always]}
    - {copy: {dest: "{{ out }}/a", content: a}, tags: [a]}
    - {copy: {dest: "{{ out }}/b", content: b}, tags: [b]}
"""
    hosts = fleet(tmp_path, 1)
    run(text, hosts, tmp_path, tags=frozenset({"a"}))
    assert sorted(p.name for p in (tmp_path / "h1").iterdir()) == ["a"]
    run(text, hosts, tmp_path, skip_tags=frozenset({"a"}))
    assert sorted(p.name for p in (tmp_path / "h1").iterdir()) == ["a", "b"]


def test_register_when_loop_and_ignore_errors(tmp_path: Path) -> None:
    text = """\
- hosts: all
  tasks:
    - command: echo "{{ word }}"
      register: said
    - command: ['false']
      ignore_errors: true
    - copy: {dest: "{{ out }}-{{ item }}", content: "{{ said.stdout }}"}
      loop: [x, y]
      when: said.rc == 0 and item != 'y'
"""
    result, events = run(text, [Host("h1", {"out": str(tmp_path / "o"), "word": "a b"})], tmp_path)
    assert result.exit_code == 0
    assert (tmp_path / "o-x").read_text() == "a b\n"
    assert not (tmp_path / "o-y").exists()
    r = result.host("h1")
    assert (r.changed, r.ignored, r.skipped, r.failed) == (2, 1, 1, 0)


def test_plan_wrong_for_one_host_runs_nothing_anywhere(tmp_path: Path) -> None:
    text = "- hosts: all\n  tasks:\n    - file: {path: '{{ out }}/{{ sub }}', state: directory}\n"
    hosts = [Host("h1", {"out": str(tmp_path), "sub": "a"}), Host("h2", {"out": str(tmp_path)})]
    with pytest.raises(PlanErrors, match=r"plan.yml:3:20: undefined variable 'sub' for host h2"):
        run(text, hosts, tmp_path)
    assert not (tmp_path / "a").exists()


def test_failed_host_skips_later_plays(tmp_path: Path) -> None:
    text = (
        "- hosts: all\n  tasks:\n    - command: ['{{ prog }}']\n"
        "- hosts: all\n  tasks:\n    - file: {path: '{{ out }}', state: directory}\n"
    )
    hosts = [
        Host("h1", {"prog": "false", "out": str(tmp_path / "1")}),
        Host("h2", {"prog": "true", "out": str(tmp_path / "2")}),
    ]
    result, _ = run(text, hosts, tmp_path)
    assert not (tmp_path / "1").exists() and (tmp_path / "2").is_dir()
    assert result.exit_code == 1


def test_check_mode_skips_tasks_needing_output_of_commands_not_run(tmp_path: Path) -> None:
    text = """\
- hosts: all
  tasks:
    - command: echo hi
      register: said
    - copy: {dest: "{{ out }}", content: "{{ said.stdout }}"}
"""
    result, events = run(text, [Host("h1", {"out": str(tmp_path / "o")})], tmp_path, check=True)
    assert result.exit_code == 0
    done = [e for e in events.events if isinstance(e, TaskDone)]
    assert [(e.status, e.msg) for e in done] == [
        ("changed", ""),
        ("skipped", "check mode: needs 'said', the result of a command that was not run"),
    ]
    assert not (tmp_path / "o").exists()


def test_template_and_copy_src_come_from_the_plan_directory(tmp_path: Path) -> None:
    (tmp_path / "page.j2").write_text("<h1>{{ title }} on {{ inventory_hostname }}</h1>\n")
    (tmp_path / "static.txt").write_bytes(b"\x00binary\xff")
    text = """\
- hosts: all
  tasks:
    - template: {src: page.j2, dest: "{{ out }}.html", mode: "0640"}
    - copy: {src: static.txt, dest: "{{ out }}.bin"}
"""
    result, _ = run(text, [Host("h1", {"out": str(tmp_path / "o"), "title": "Hi"})], tmp_path)
    assert result.exit_code == 0
    assert (tmp_path / "o.html").read_text() == "<h1>Hi on h1</h1>\n"
    assert (tmp_path / "o.html").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "o.bin").read_bytes() == b"\x00binary\xff"


def test_template_error_names_the_template_line_and_fails_only_that_host(tmp_path: Path) -> None:
    (tmp_path / "page.j2").write_text("line one\n{{ title.upper() }}\n{{ nothing }}\n")
    text = "- hosts: all\n  tasks:\n    - template: {src: page.j2, dest: '{{ out }}'}\n"
    hosts = [
        Host("h1", {"out": str(tmp_path / "o1"), "title": "x"}),
        Host("h2", {"out": str(tmp_path / "o2"), "title": "y", "nothing": "z"}),
    ]
    result, _ = run(text, hosts, tmp_path)
    assert result.host("h1").error == (
        f"{tmp_path}/page.j2:3: undefined variable 'nothing' for host h1"
    )
    assert result.host("h2").failed == 0 and (tmp_path / "o2").read_text() == "line one\nY\nz\n"


def test_host_pattern_may_come_from_extra_vars(tmp_path: Path) -> None:
    text = "- hosts: '{{ target }}'\n  tasks:\n    - command: 'true'\n"
    asked: list[str] = []
    plan = parse_plan(load_yaml_text(text, "p.yml"), "p.yml")
    hosts = [Host("h1", {})]

    def select(pattern: str) -> list[Host]:
        asked.append(pattern)
        return hosts

    Runner(
        plan,
        select,
        lambda h: LocalConnection(h.name),
        ListReporter(),
        RunOptions(extra_vars={"target": "web:&eu"}),
    ).run()
    assert asked == ["web:&eu"]


HANDLER_CHAIN = """\
- hosts: all
  tasks:
    - file: {path: "{{ out }}", state: directory}
    - shell: echo t1 >> {{ out }}/log
      notify: web changed
    - meta: flush_handlers
    - shell: echo t2 >> {{ out }}/log
      notify: [web changed, ping]
    - meta: noop
  handlers:
    - name: first
      shell: echo first >> {{ out }}/log
    - name: reload
      shell: echo reload >> {{ out }}/log
      listen: web changed
      notify: [first, last]
    - name: ping
      shell: echo ping >> {{ out }}/log
      notify: pong
    - name: pong
      shell: echo pong >> {{ out }}/log
      notify: ping
    - name: last
      shell: echo last >> {{ out }}/log
"""


def test_handlers_listen_notify_each_other_and_flush_where_asked(tmp_path: Path) -> None:
    result, events = run(HANDLER_CHAIN, fleet(tmp_path, 1), tmp_path)
    assert result.exit_code == 0
    # flush 1 (meta): reload by its topic, last (after it, same pass), first (before it: next
    # pass); flush 2 (end of play): the same again, plus ping <-> pong once each, no loop
    assert (tmp_path / "h1" / "log").read_text().split() == [
        "t1",
        "reload",
        "last",
        "first",
        "t2",
        "reload",
        "ping",
        "pong",
        "last",
        "first",
    ]
    handlers = [e.task for e in events.events if isinstance(e, TaskDone) and e.handler]
    assert handlers == ["reload", "last", "first", "reload", "ping", "pong", "last", "first"]
    assert not [e for e in events.events if isinstance(e, TaskDone) and e.module == "meta"]


def test_flush_handlers_runs_whatever_the_tags(tmp_path: Path) -> None:
    plan = HANDLER_CHAIN.replace("    - file:", "    - tags: [x]\n      file:").replace(
        "    - shell: echo t1", "    - tags: [x]\n      shell: echo t1"
    )
    result, _ = run(plan, fleet(tmp_path, 1), tmp_path, tags=frozenset({"x"}))
    assert result.exit_code == 0
    # t2 is not selected; the untagged flush still runs what t1 notified, at its place
    assert (tmp_path / "h1" / "log").read_text().split() == ["t1", "reload", "last", "first"]
