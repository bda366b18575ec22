"""The benchmark's note about a busy machine (lsm_ext/bench.py): printed
before the table exactly when the last minute's load average is more than one
core above what the most threads timed leave idle."""

from __future__ import annotations

import os

import pytest

from lsm_ext import bench


@pytest.mark.parametrize(
    ("load", "cores", "threads", "noted"),
    [
        (0.7, 2, (1, 2), False),  # idle apart from the shell
        (1.0, 2, (1, 2), False),  # one core busy: 2 threads just fit the rule
        (1.3, 2, (1, 2), True),
        (1.3, 2, (1,), False),  # one thread leaves room for more
        (2.5, 2, (1,), True),
        (5.0, 16, (1, 2), False),
    ],
)
def test_busy_note(monkeypatch, load, cores, threads, noted):
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    note = bench._busy_note(threads)
    assert bool(note) == noted
    if noted:
        assert f"{load:.1f}" in note and f"{cores} cores" in note


def test_busy_note_without_load_average(monkeypatch):
    def missing():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", missing)
    assert bench._busy_note((1, 2)) == ""
