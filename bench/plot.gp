# bench/plot.gp - the charts of bench/compare.sh, as SVG and PNG:
#   OUTBASE-throughput.svg/png  maximum throughput per scenario (closed loop), sff and Express
#   OUTBASE-latency.svg/png     open-loop latency percentiles at 25, 50 and 75 % of the Express
#                               peer's maximum, one panel per scenario
#
#   gnuplot -e "datadir='DIR'; outbase='bench/results/DATE'" bench/plot.gp
#
# DIR holds what compare.sh writes: throughput.dat ("scenario" sff_h1 express express1 sff_h2c),
# latency.dat (a block per scenario, rows p50/p90/p99/p99.9: sff at 25/50/75 %, then Express) and
# vars.gp (nscen, titles[], peer, reference, subtitle). "?" is a missing figure.
if (!exists("datadir")) datadir = "."
if (!exists("outbase")) outbase = "bench/results/latest"
load datadir."/vars.gp"
tdat = datadir."/throughput.dat"
ldat = datadir."/latency.dat"

sff1 = "#1f5fa8"; sff2 = "#7fb2e5"; exp1c = "#c0392b"; exp2c = "#f1948a"
cols = (nscen > 4) ? 3 : (nscen > 1 ? 2 : 1)
rows = (nscen + cols - 1) / cols

do for [fmt in "svg png"] {
    # ---- throughput -------------------------------------------------------------------------
    reset
    set datafile missing "?"
    if (fmt eq "svg") {
        set terminal svg size 1000,560 dynamic enhanced font "Helvetica,13" background rgb "white"
    } else {
        set terminal pngcairo size 1000,560 enhanced font "Helvetica,10" background rgb "white"
    }
    set output outbase."-throughput.".fmt
    set title "Maximum throughput, closed loop (64 connections)\n{/*0.8 ".subtitle."}"
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.9 noborder
    set boxwidth 0.9
    set logscale y
    set yrange [100:*]
    set ylabel "requests per second (log scale)"
    set format y "%.0s%c"
    set grid ytics lc rgb "#dddddd"
    set xtics nomirror scale 0 font ",10"
    set ytics nomirror
    set border 3
    set key outside bottom center horizontal
    if (peer) {
        plot tdat using 2:xtic(1) title "sff, HTTP/1.1" lc rgb sff1, \
             '' using 5 title "sff, h2c" lc rgb sff2, \
             '' using 3 title "Express, cluster" lc rgb exp1c, \
             '' using 4 title "Express, 1 worker" lc rgb exp2c
    } else {
        plot tdat using 2:xtic(1) title "sff, HTTP/1.1" lc rgb sff1, \
             '' using 5 title "sff, h2c" lc rgb sff2
    }
    unset output

    # ---- latency ------------------------------------------------------------------------------
    if (nscen > 0) {
        reset
        set datafile missing "?"
        if (fmt eq "svg") {
            set terminal svg size 1200,360*rows+60 dynamic enhanced font "Helvetica,12" background rgb "white"
        } else {
            set terminal pngcairo size 1200,360*rows+60 enhanced font "Helvetica,9" background rgb "white"
        }
        set output outbase."-latency.".fmt
        set multiplot layout rows,cols title "Open-loop latency at 25, 50 and 75 % of ".reference." maximum rate, counted from the scheduled send times\n{/*0.8 ".subtitle."}"
        set logscale y
        set format y "%g"
        set ylabel "ms (log scale)"
        set xrange [-0.25:3.25]
        set xtics ("p50" 0, "p90" 1, "p99" 2, "p99.9" 3) nomirror
        set ytics nomirror
        set grid ytics lc rgb "#dddddd"
        set border 3
        set key top left font ",9" samplen 2 spacing 0.9
        do for [i = 1:nscen] {
            set title titles[i] font ",11"
            if (i > 1) { unset key }
            if (peer) {
                plot ldat index (i-1) using 0:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb "#9ecae1" title "sff 25 %", \
                     '' index (i-1) using 0:3 with linespoints lw 2 pt 7 ps 0.6 lc rgb "#4292c6" title "sff 50 %", \
                     '' index (i-1) using 0:4 with linespoints lw 2 pt 7 ps 0.6 lc rgb "#08306b" title "sff 75 %", \
                     '' index (i-1) using 0:5 with linespoints lw 2 dt 2 pt 5 ps 0.6 lc rgb "#fcae91" title "Express 25 %", \
                     '' index (i-1) using 0:6 with linespoints lw 2 dt 2 pt 5 ps 0.6 lc rgb "#fb6a4a" title "Express 50 %", \
                     '' index (i-1) using 0:7 with linespoints lw 2 dt 2 pt 5 ps 0.6 lc rgb "#a50f15" title "Express 75 %"
            } else {
                plot ldat index (i-1) using 0:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb "#9ecae1" title "sff 25 %", \
                     '' index (i-1) using 0:3 with linespoints lw 2 pt 7 ps 0.6 lc rgb "#4292c6" title "sff 50 %", \
                     '' index (i-1) using 0:4 with linespoints lw 2 pt 7 ps 0.6 lc rgb "#08306b" title "sff 75 %"
            }
        }
        unset multiplot
        unset output
    }
}
