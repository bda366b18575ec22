"""The speed page's plot, made from the benchmark's own output.

    python docs/speed_plot.py docs/bench_output.txt docs/_static/speed.svg

Reads the table printed by ``lsm-ext-bench`` (``docs/bench_output.txt`` is a
run on the development machine) and draws, for the 1-thread rows, each op and
shape's time over its bandwidth floor (1.0 = the floor: a copy of the same
bytes, or a read-only sum for logsumexp) for lsm_ext and, where measured,
SciPy and PyTorch (the floor ratio times the peer's xSciPy / xTorch). A plain
SVG, written without plotting libraries; conf.py regenerates it at every
docs build.
"""

import sys
from html import escape

COLORS = {"lsm_ext": "#1f77b4", "SciPy": "#d62728", "PyTorch": "#2ca02c"}


def parse(text):
    """Rows of the table: dicts with op, dtype, shape, axis, thr, floor and
    the peers' ratios (None where not measured)."""
    rows = []
    header = None
    for line in text.splitlines():
        if line.startswith("op ") and "floor" in line:
            header = line
            continue
        if header is None or not line.strip() or line.startswith("-"):
            continue
        parts = line.split()
        if len(parts) < 8 or parts[1] not in ("float32", "float64"):
            continue
        # shape is "(a, b)" (two tokens) or "(a,)" (one)
        i = 2
        shape = parts[i]
        while not shape.endswith(")"):
            i += 1
            shape += " " + parts[i]
        rest = parts[i + 1 :]
        cols = [
            "axis",
            "thr",
            "ms",
            "out_ms",
            "floor",
            "exp",
            "scipy",
            "numpy",
            "torch",
            "jax",
            "best",
            "mb",
            "scipy_mb",
        ]
        vals = dict(zip(cols, rest))

        def num(k):
            v = vals.get(k, "-")
            return None if v in ("-", "nan") else float(v)

        rows.append(
            {
                "op": parts[0],
                "dtype": parts[1],
                "shape": shape,
                "axis": vals["axis"],
                "thr": int(vals["thr"]),
                "floor": num("floor"),
                "scipy": num("scipy"),
                "torch": num("torch"),
            }
        )
    return rows


def svg(rows, dtype="float32"):
    rows = [r for r in rows if r["thr"] == 1 and r["dtype"] == dtype and r["floor"]]
    bar, gap, left, width = 6, 8, 250, 460
    xmax = 8.0
    h = 40 + len(rows) * (3 * bar + gap) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
        f'height="{h}" font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="14">time / bandwidth floor, {dtype}, 1 thread '
        f"(bars clipped at {xmax:g})</text>",
    ]
    y = 30
    for r in rows:
        label = f"{r['op']} {r['shape']} axis {r['axis']}"
        out.append(
            f'<text x="{left - 6}" y="{y + 2 * bar}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        vals = [("lsm_ext", r["floor"])]
        if r["scipy"]:
            vals.append(("SciPy", r["floor"] * r["scipy"]))
        if r["torch"]:
            vals.append(("PyTorch", r["floor"] * r["torch"]))
        for k, (name, v) in enumerate(vals):
            w = min(v, xmax) / xmax * width
            out.append(
                f'<rect x="{left}" y="{y + k * bar}" width="{w:.1f}" '
                f'height="{bar - 1}" fill="{COLORS[name]}"/>'
            )
        y += 3 * bar + gap
    x1 = left + width / xmax
    out.append(
        f'<line x1="{x1:.1f}" y1="24" x2="{x1:.1f}" y2="{y}" '
        'stroke="black" stroke-dasharray="3,2"/>'
    )
    out.append(f'<text x="{x1 + 3:.1f}" y="{y + 12}">1.0: the floor</text>')
    for k, name in enumerate(COLORS):
        out.append(
            f'<rect x="{left + 120 * k}" y="{y + 20}" width="10" '
            f'height="10" fill="{COLORS[name]}"/>'
        )
        out.append(f'<text x="{left + 120 * k + 14}" y="{y + 29}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        rows = parse(f.read())
    if not rows:
        raise SystemExit(f"no benchmark rows in {src}")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(svg(rows))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
