"""Benchmarks: fleet rotation with origin-agent against the floor and against Ansible (issue 7).

Run ``python -m bench.rotate`` (or ``make bench``); results land in ``bench/RESULTS.md``.
"""
