"""Inventory: hosts, groups and variables, in Ansible's YAML and INI formats."""
