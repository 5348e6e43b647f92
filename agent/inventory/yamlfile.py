"""Ansible's YAML inventory format.

    all:                      # top-level keys are groups
      vars: {ntp: 10.0.0.1}
      hosts:
        lone.example.com:
      children:
        web:
          hosts:
            web[01:03].example.com: {port: 2222}
          children:
            eu: {hosts: {web02.example.com:}}

A group holds only ``hosts``, ``children`` and ``vars`` (anything else is reported, with the
accepted keys); ``hosts`` and ``children`` may also be a single name.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode

from agent.inventory.builder import Builder
from agent.inventory.problems import Problems, did_you_mean
from agent.inventory.ranges import RangeError, expand_entry
from agent.inventory.yamlload import construct, flatten, is_null, is_str, pos

GROUP_KEYS = ("children", "hosts", "vars")


class YamlInventory:
    """Parse one YAML inventory document into a :class:`Builder`."""

    def __init__(self, path: str, builder: Builder, problems: Problems) -> None:
        self.path = path
        self.builder = builder
        self.problems = problems

    def parse(self, root: Node | None) -> None:
        if root is None:
            self.problems.add(pos(self.path, root), "empty YAML inventory")
            return
        if not isinstance(root, MappingNode):
            self.problems.add(
                pos(self.path, root),
                "a YAML inventory must be a mapping of group names (e.g. 'all:')",
            )
            return
        for key_node, value_node in flatten(root, self.path, self.problems):
            if is_str(key_node) and key_node.value == "plugin":
                self.problems.add(
                    pos(self.path, key_node),
                    "inventory plugins are not supported",
                    hint="list hosts and groups in YAML or INI",
                )
                continue
            if is_str(key_node) and key_node.value in GROUP_KEYS:
                self.problems.add(
                    pos(self.path, key_node),
                    f"top-level key {key_node.value!r} is not a group name",
                    hint="top-level keys are groups: put it under 'all:'",
                )
                continue
            self._group(key_node, value_node)

    def _name(self, node: Node, what: str) -> str | None:
        if is_str(node):
            assert isinstance(node, ScalarNode)
            return str(node.value)
        shown = (
            node.value if isinstance(node, ScalarNode) else "a " + type(node).__name__[:-4].lower()
        )
        self.problems.add(pos(self.path, node), f"{what} {shown!r} must be a string (quote it)")
        return None

    def _group(self, key_node: Node, node: Node) -> str | None:
        name = self._name(key_node, "group name")
        if name is None:
            return None
        group = self.builder.add_group(name, pos(self.path, key_node))
        if group is None or is_null(node):
            return group
        if not isinstance(node, MappingNode):
            self.problems.add(
                pos(self.path, node),
                f"group {group!r} must be a mapping with {', '.join(GROUP_KEYS)}, or empty",
            )
            return group
        for section_node, value in flatten(node, self.path, self.problems):
            section = self._name(section_node, "key")
            if section is None:
                continue
            if section not in GROUP_KEYS:
                hint = did_you_mean(section, GROUP_KEYS) or "accepted: " + ", ".join(GROUP_KEYS)
                self.problems.add(
                    pos(self.path, section_node),
                    f"unknown key {section!r} in group {group!r}",
                    hint=hint,
                )
                continue
            if is_null(value):
                continue
            if section == "vars":
                self._group_vars(group, value)
            elif section == "children":
                for child_key, child_value in self._entries(group, section, value):
                    child = self._group(child_key, child_value)
                    if child is not None:
                        self.builder.add_child(group, child, pos(self.path, child_key))
            else:
                for host_key, host_value in self._entries(group, section, value):
                    self._hosts(group, host_key, host_value)
        return group

    def _entries(self, group: str, section: str, node: Node) -> list[tuple[Node, Node]]:
        if is_str(node):  # a single name
            null = ScalarNode("tag:yaml.org,2002:null", "", node.start_mark, node.end_mark)
            return [(node, null)]
        if not isinstance(node, MappingNode):
            self.problems.add(
                pos(self.path, node),
                f"'{section}' of group {group!r} must be a mapping of names",
                hint="write each name as a key ending in ':'",
            )
            return []
        return flatten(node, self.path, self.problems)

    def _group_vars(self, group: str, node: Node) -> None:
        if not isinstance(node, MappingNode):
            self.problems.add(pos(self.path, node), f"'vars' of group {group!r} must be a mapping")
            return
        for var_key, var_value in flatten(node, self.path, self.problems):
            key = self._name(var_key, "variable name")
            ok, value = construct(var_value, self.path, self.problems)
            if key is not None and ok:
                self.builder.set_group_var(group, key, value, pos(self.path, var_key))

    def _hosts(self, group: str, key_node: Node, node: Node) -> None:
        entry = self._name(key_node, "host name")
        if entry is None:
            return
        where = pos(self.path, key_node)
        try:
            names, port = expand_entry(entry)
        except RangeError as err:
            self.problems.add(where, str(err))
            return
        variables: list[tuple[str, object]] = []
        if not is_null(node):
            if not isinstance(node, MappingNode):
                self.problems.add(
                    pos(self.path, node), f"variables of host {entry!r} must be a mapping"
                )
                return
            for var_key, var_value in flatten(node, self.path, self.problems):
                key = self._name(var_key, "variable name")
                ok, value = construct(var_value, self.path, self.problems)
                if key is not None and ok:
                    variables.append((key, value))
        for name in names:
            if not self.builder.add_host(name, group, port, where):
                break  # the same problem would repeat for every name of the range
            for key, value in variables:
                self.builder.set_host_var(name, key, value)


def parse_yaml(root: Node | None, path: str, builder: Builder, problems: Problems) -> None:
    """Parse a composed YAML inventory document (see module docstring)."""
    YamlInventory(path, builder, problems).parse(root)
