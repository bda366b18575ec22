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


# PyTorch's jvp (a peer, when installed) warns from inside torch.jit
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_table_quartiles_bracket_the_medians():
    """Each row's q1-q3 columns are the quartiles of the per-round ratios
    whose medians are floor and xSciPy: q1 <= median <= q3, in the printed
    text as in the returned rows."""
    import io

    pytest.importorskip("scipy")
    out = io.StringIO()
    rows = bench.benchmark([((64, 40), -1)], repeat=5, out=out, cache="warm")
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("softmax")]
    assert len(rows) == 10 and len(lines) == 2
    for r in rows:
        q1, q3 = r["floor_q"]
        assert q1 <= r["floor"] <= q3
        if r["scipy"] is not None:
            s1, s3 = r["scipy_q"]
            assert s1 <= r["scipy"] <= s3
    r = rows[1]  # softmax float32: the last two columns of its line
    floor_text, scipy_text = lines[0].split()[-2:]
    assert floor_text == f"{r['floor_q'][0]:.2f}-{r['floor_q'][1]:.2f}"
    assert scipy_text == f"{r['scipy_q'][0]:.1f}-{r['scipy_q'][1]:.1f}"
