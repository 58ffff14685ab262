"""benchmarks/bench_kernels.py: the GELU epilogue rows time both ways and report the probe's choice."""

from __future__ import annotations


def test_epilogue_rows_give_both_throughputs_and_the_choice(import_benchmark, capsys):
    bench = import_benchmark("bench_kernels")
    bench.epilogues(repeats=1)
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.strip().startswith("[")]
    assert len(rows) == len(bench.MLP_SHAPES)
    for line in rows:
        fused, apart = (float(v) for v in line.split()[-2:])
        assert fused > 0 and apart > 0
    assert any("runs float32 GELU" in line for line in out) or "no oneDNN linear op" in out[0]
