"""tools/bench_report.py turns recorded Google Benchmark JSON into the expected report.

The data (tests/data/bench_report/) are two recorded runs, trimmed: reduce_bench with 3
repetitions (median aggregates; the mean is there too and must not be used) and a quick
rowwise_bench run (single runs; kinds declared per op: col_sum's peer is deterministic).
Run by CTest: /usr/bin/python3 -m pytest tests/python.
"""
import importlib.util
import json
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "bench_report")


def load_script():
    spec = importlib.util.spec_from_file_location("bench_report", os.path.join(ROOT, "tools", "bench_report.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


br = load_script()

# The expected tables: every time is the median (or single run) of the JSON, every ratio is
# bitexact time / peer time (checked by hand: 0.6275 us / 1.2779 us = 0.49x).
EXPECTED = """\
| sum | 4Ki | 1 | exact | 3.44 us | omp_simd | 1.28 us | 2.70x | accumulate | 27.5 us | 0.13x |
| sum | 4Ki | 1 | fixed_order | 628 ns | omp_simd | 1.28 us | 0.49x | accumulate | 27.5 us | 0.02x |
| sum | 4Ki | 2 | exact | 4.33 us | omp_simd | 33.5 us | 0.13x | accumulate (1 thr) | 27.5 us | 0.16x |
| sum | 4Ki | 2 | fixed_order | 758 ns | omp_simd | 33.5 us | 0.02x | accumulate (1 thr) | 27.5 us | 0.03x |
| dot | 64Mi | 1 | exact | 516 ms | omp_simd | 318 ms | 1.62x | accumulate | 683 ms | 0.76x |
| dot | 64Mi | 1 | fixed_order | 273 ms | omp_simd | 318 ms | 0.86x | accumulate | 683 ms | 0.40x |
| dot | 64Mi | 2 | exact | 522 ms | omp_simd | 202 ms | 2.58x | accumulate (1 thr) | 683 ms | 0.76x |
| dot | 64Mi | 2 | fixed_order | 206 ms | omp_simd | 202 ms | 1.02x | accumulate (1 thr) | 683 ms | 0.30x |
| softmax | 4096x4096 | 1 | bitexact | 139 ms | libmvec | 215 ms | 0.65x | - | - | - |
| softmax | 4096x4096 | 2 | bitexact | 151 ms | libmvec | 142 ms | 1.06x | - | - | - |
| col_sum | 4096x4096 | 1 | bitexact | 50.4 ms | - | - | - | peer | 44.5 ms | 1.13x |
| col_sum | 4096x4096 | 2 | bitexact | 42.2 ms | - | - | - | peer | 32.5 ms | 1.30x |
"""


def table_rows(md):
    return [l for l in md.splitlines() if l.startswith("| ") and not l.startswith(("| op |", "| --- |"))]


def test_parse_name_strips_google_benchmark_suffixes():
    assert br.parse_name("sum/4Ki/t2/omp_simd/min_time:0.050/repeats:3/real_time") == ("sum", "4Ki", 2, "omp_simd")
    assert br.parse_name("index_add/4Mi->1Ki/t1/exact/iterations:3/repeats:3/real_time") == \
        ("index_add", "4Mi->1Ki", 1, "exact")
    assert br.parse_name("BM_softmax_bitexact/1/repeats:3/real_time") is None  # not the convention


def test_report_table_and_charts(tmp_path, capsys):
    out = tmp_path / "report"
    assert br.main([DATA, "--out", str(out), "--summary"]) == 0
    md = (out / "index.md").read_text()
    assert table_rows(md) == table_rows(EXPECTED)
    assert "Intel(R) Xeon(R) Processor, bitexact ISA avx512, 2 CPUs" in md
    assert "the ratios are the claim" in md
    for fam in ("reduce", "rowwise"):
        assert "![%s](%s.png)" % (fam, fam) in md
        with open(out / (fam + ".png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    screen = capsys.readouterr().out
    assert "reduce    sum             4Ki               fixed_order       0.49x    0.02x   omp_simd" in screen


def test_misnamed_benchmarks_are_listed_not_dropped_silently(tmp_path):
    src = tmp_path / "json"
    src.mkdir()
    shutil.copy(os.path.join(DATA, "rowwise_bench.json"), src)
    with open(os.path.join(DATA, "reduce_bench.json")) as f:
        d = json.load(f)
    d["benchmarks"][0]["run_name"] = "BM_old_style/1/real_time"
    (src / "reduce_bench.json").write_text(json.dumps(d))
    (src / "crashed_bench.json").write_text('{"context": {')
    out = tmp_path / "report"
    assert br.main([str(src), "--out", str(out)]) == 0
    md = (out / "index.md").read_text()
    assert "BM_old_style/1/real_time (name does not follow" in md
    assert "crashed_bench.json (not valid JSON" in md


def test_audit_lines_are_read(tmp_path):
    audit = tmp_path / "audit.txt"
    audit.write_text("random: 216 configurations, 0 disagree with the reference: ALL AGREE\n"
                     "scatter: 351 configurations, 2 disagree with the reference: MISMATCH\n")
    assert br.parse_audit(str(audit)) == {"random": (216, 0, "ALL AGREE"), "scatter": (351, 2, "MISMATCH")}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
