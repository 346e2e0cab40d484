# Drawn by bench/report.py from sweep-<target>.dat; run `gnuplot sweep.gp` here to redraw.
set terminal pngcairo size 900,560 font ',11'
set logscale x
set xtics (10, 50, 200, 1000)
set xrange [8.0:1250.0]
set xlabel 'clients (pgbench -S -M simple)'
set grid
set key below horizontal
set output 'sweep-tps.png'
set title "Throughput against clients\n2026-11-27 12:51:52 UTC, 2 cores; 10s per point, pool size 20"
set ylabel 'transactions per second'
set yrange [0:*]
plot 'sweep-pgmux.dat' using 1:2 with linespoints lw 2 lc rgb '#1b9e77' pt 7 title 'pgmux', 'sweep-pgmux-pipe1.dat' using 1:2 with linespoints lw 2 lc rgb '#e6ab02' pt 15 title 'pgmux-pipe1', 'sweep-pgbouncer.dat' using 1:2 with linespoints lw 2 lc rgb '#d95f02' pt 5 title 'pgbouncer', 'sweep-direct.dat' using 1:2 with linespoints lw 2 lc rgb '#7570b3' pt 9 title 'direct'
set output 'sweep-p99.png'
set title "p99 latency against clients\n2026-11-27 12:51:52 UTC, 2 cores; 10s per point, pool size 20"
set ylabel 'p99 latency, ms (log scale)'
set logscale y
set yrange [*:*]
plot 'sweep-pgmux.dat' using 1:3 with linespoints lw 2 lc rgb '#1b9e77' pt 7 title 'pgmux', 'sweep-pgmux-pipe1.dat' using 1:3 with linespoints lw 2 lc rgb '#e6ab02' pt 15 title 'pgmux-pipe1', 'sweep-pgbouncer.dat' using 1:3 with linespoints lw 2 lc rgb '#d95f02' pt 5 title 'pgbouncer', 'sweep-direct.dat' using 1:3 with linespoints lw 2 lc rgb '#7570b3' pt 9 title 'direct'
