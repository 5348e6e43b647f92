"""The shipped bootstrap plan tells the truth on apache origins too: the task that removes a
freshly installed server's placeholder site names no server it may not be, and removes that
server's own placeholder (nginx's ``default``, apache2's ``000-default.conf``)."""

from __future__ import annotations

import pytest

from agent.commands.run import bundled_plan
from agent.plan.parse import load_plan
from agent.plan.render import scope_for

PLACEHOLDER = {
    "nginx": "/etc/nginx/sites-enabled/default",
    "apache": "/etc/apache2/sites-enabled/000-default.conf",
}


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_placeholder_task_fits_the_hosts_web_server(server: str) -> None:
    play = load_plan(bundled_plan("bootstrap")).plays[0]
    (task,) = [t for t in play.tasks if "placeholder" in t.name]
    other = "apache" if server == "nginx" else "nginx"
    assert other not in task.name
    for changed in (True, False):
        scope = scope_for(
            "web01", {"web_server": server}, ["all"], play, {}, {"installed": {"changed": changed}}
        )
        assert all(scope.evaluate(w, task.pos) for w in task.when) is changed
        assert scope.render(task.args["path"], task.pos) == PLACEHOLDER[server]
