"""charts.py: PNG bar charts (one bar per allocator, grouped by case) of a per-case ratio,
drawn with gnuplot on a log scale so that 0.5x and 2x look equally far from 1."""
import math
import shutil
import subprocess

SCRIPT = """\
set terminal pngcairo size {width},620 font "sans,10" noenhanced
set output '{png}'
set title "{title}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border rgb "#333333"
set boxwidth 0.9
set logscale y 2
set yrange [{ymin} / 1.03:{ymax} * 1.03]
set ytics ({ytics})
set grid ytics lc rgb "#dddddd"
set xtics rotate by -35 scale 0 font ",10" nomirror
set bmargin 6
set ylabel "{ylabel}"
set key outside right top vertical
set xrange [-0.6:{nrows} - 0.4]
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 1.5 lc rgb "black" front
colors = "{colors}"
plot for [i=2:{last}] '{data}' using i:xtic(1) title columnheader(i) lc rgb word(colors, i - 1)
"""
COLORS = ["#9e9e9e", "#e6a23c", "#5b8ff9", "#2ca02c", "#d62728", "#8c564b", "#9467bd"]


def _ticks(lo, hi):
    ticks = [1 / 64, 1 / 32, 0.0625, 0.125, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 8, 16, 32, 64]
    return ", ".join(f'"{t:g}" {t:g}' for t in ticks if lo <= t <= hi)


def bar_chart(rows, names, title, ylabel, data_path, png_path):
    """rows: [(case label, [ratio or None per allocator])]. Returns False without gnuplot."""
    if not shutil.which("gnuplot"):
        return False
    values = [v for _, vs in rows for v in vs if v]
    if not values:
        return False
    lo = 2 ** math.floor(math.log2(min(values) / 1.1))
    hi = 2 ** math.ceil(math.log2(max(values) * 1.1))
    lo, hi = min(lo, 0.5), max(hi, 2)
    with open(data_path, "w") as f:
        f.write('"case" ' + " ".join(f'"{n}"' for n in names) + "\n")
        for label, vs in rows:
            f.write(f'"{label}" ' + " ".join(f"{v:.4f}" if v else "NaN" for v in vs) + "\n")
    script = SCRIPT.format(width=max(1100, 70 * len(rows) + 200), png=png_path, title=title,
                           ymin=lo, ymax=hi, ytics=_ticks(lo, hi), ylabel=ylabel,
                           colors=" ".join(COLORS), nrows=len(rows), last=len(names) + 1, data=data_path)
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return True
