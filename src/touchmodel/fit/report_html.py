"""The backtest as one self-contained HTML page: ROC, calibration and lift as inline SVG.

No script and no external file: the page opens from disk, by mail, anywhere.
"""

from __future__ import annotations

from html import escape

from touchmodel.fit.backtest import BacktestResult

_W, _H, _PAD = 360, 260, 36


def _line_chart(series: list[tuple[str, list[tuple[float, float]], str]], title: str) -> str:
    """An SVG chart of ``(name, [(x, y) in 0..1], colour)`` lines on the unit square."""

    def px(x: float, y: float) -> str:
        return f"{_PAD + x * (_W - 2 * _PAD):.1f},{_H - _PAD - y * (_H - 2 * _PAD):.1f}"

    parts = [
        f'<svg width="{_W}" height="{_H}" role="img" aria-label="{escape(title)}">',
        f'<text x="{_W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
        f'<polyline points="{px(0, 0)} {px(1, 1)}" stroke="#bbb" fill="none" stroke-dasharray="4"/>',
        f'<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" fill="none" stroke="#888"/>',
    ]
    for i, (name, points, colour) in enumerate(series):
        if points:
            pts = " ".join(px(x, y) for x, y in points)
            parts.append(
                f'<polyline points="{pts}" stroke="{colour}" fill="none" stroke-width="2"/>'
            )
        parts.append(
            f'<text x="{_PAD + 6}" y="{_PAD + 16 + 14 * i}" fill="{colour}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bar_chart(labels: list[str], values: list[float], title: str, ref: float | None = None) -> str:
    """An SVG bar chart; ``ref`` draws a horizontal reference line (the base rate)."""
    top = max([*values, ref or 0.0, 1e-9])
    bw = (_W - 2 * _PAD) / max(len(values), 1)
    parts = [
        f'<svg width="{_W}" height="{_H}" role="img" aria-label="{escape(title)}">',
        f'<text x="{_W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = v / top * (_H - 2 * _PAD)
        x = _PAD + i * bw
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{_H - _PAD - h:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" fill="#3b6ea5">'
            f"<title>{escape(label)}: {v:.1%}</title></rect>"
        )
        parts.append(
            f'<text x="{x + bw / 2:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" '
            f'font-size="11">{escape(label)}</text>'
        )
    if ref is not None:
        y = _H - _PAD - ref / top * (_H - 2 * _PAD)
        parts.append(
            f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c33" stroke-dasharray="4"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def backtest_html(result: BacktestResult, model_name: str) -> str:
    """The whole report page."""
    ref = result.reference
    series = [("health score", result.roc, "#3b6ea5")]
    if ref is not None:
        series.append((f"reference ({ref.method})", ref.roc, "#d08c2c"))
    deciles = [b for b in result.deciles if b.rate is not None]
    grades = [b for b in result.grades if b.rate is not None]
    rows = "".join(
        f"<tr><td>{escape(f.name)}</td><td>{f.fire_rate:.1%}</td>"
        f"<td>{'' if f.precision is None else f'{f.precision:.1%}'}</td>"
        f"<td>{'' if f.recall is None else f'{f.recall:.1%}'}</td>"
        f"<td>{'' if f.lift is None else f'{f.lift:.2f}'}</td></tr>"
        for f in [*result.triggers, result.any_risk]
    )
    auc = "—" if result.health_auc is None else f"{result.health_auc:.3f}"
    ci = result.health_auc_interval
    ci_text = f" (95% interval {ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
    ref_text = (
        f"<p>Reference model AUC {ref.model_auc:.3f} against the health score's "
        f"{ref.health_auc:.3f} on the same {ref.test_rows:,} held-out rows ({escape(ref.method)}).</p>"
        if ref is not None and ref.model_auc is not None and ref.health_auc is not None
        else ""
    )
    base = result.base_rate
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backtest: {escape(model_name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child{{text-align:left}}.charts{{display:flex;flex-wrap:wrap;gap:1em}}</style></head>
<body><h1>Backtest: {escape(model_name)}</h1>
<p>{len(result.dates)} date(s) from {result.dates[0]} to {result.dates[-1]}; label: {escape(result.label)}.
{result.rows:,} account-dates, {result.churned:,} churned ({result.base_rate:.1%}).</p>
<p>Health score ROC AUC <strong>{auc}</strong>{ci_text}; 0.5 is chance.</p>{ref_text}
<div class="charts">
{_line_chart(series, "ROC curve")}
{_bar_chart([b.name for b in grades], [b.rate or 0.0 for b in grades], "Churn by grade", base)}
{_bar_chart([b.name for b in deciles], [b.rate or 0.0 for b in deciles], "Churn by decile", base)}
</div>
<h2>Triggers</h2>
<table><tr><th>trigger</th><th>fire rate</th><th>precision</th><th>recall</th><th>lift</th></tr>{rows}</table>
</body></html>
"""
