#!/usr/bin/python3
"""bench_report.py - the cost of determinism, op by op, from Google Benchmark JSON files.

    /usr/bin/python3 tools/bench_report.py JSON_DIR [--out report] [--audit audit.txt] [--summary]

Reads every *.json in JSON_DIR (one per benchmark binary, written with
--benchmark_out=DIR/<binary>.json --benchmark_out_format=json), writes OUT/index.md (a table per
family) and OUT/<family>.png (charts), and with --summary prints one screen for the terminal:
per family how many configurations of bitexact-audit agree (from its output, --audit) and the
overhead of each deterministic op against its fastest non-deterministic peer. Needs only Debian's
python3 and python3-matplotlib (Agg backend, no display).

Naming convention (every benchmark binary follows it; see benchmarks/median_reporter.hpp):
  * a benchmark's name is "<op>/<case>/t<threads>/<impl>", e.g. "sum/4Ki/t2/omp_simd", followed
    only by Google Benchmark's own suffixes (/min_time:..., /iterations:..., /repeats:...,
    /real_time). op and case are free text without '/'; threads is what the impl was given.
  * the JSON "context" carries, from bitexact_bench::declare_family(family, kinds):
      "bitexact.family"            the family (reduce, random, scatter, gemm, conv, ...)
      "bitexact.kind.<impl>"       bitexact | nondeterministic | deterministic | floor
      "bitexact.kind.<op>/<impl>"  the same for one op only (wins over the plain entry)
      "bitexact.cpu", "bitexact.isa"  the machine's CPU model and the ISA bitexact ran
  * times are wall clock (real_time) of the "median" aggregate when the benchmark has
    repetitions, else of its single run. A peer that has no t2 run (single-threaded by nature,
    e.g. a serial loop or cuRAND's host generator) is compared at T=2 with its t1 time, marked
    "(1 thr)".
For each (family, op, case, T) and each "bitexact" impl the report gives its time, the fastest
"nondeterministic" peer, the fastest "deterministic" peer, and the ratios bitexact time / peer
time (below 1.00x: bitexact is faster). "floor" impls (memory sweeps) are listed, not compared.
"""
import argparse
import glob
import json
import math
import os
import re
import statistics
import sys

KINDS = ("bitexact", "nondeterministic", "deterministic", "floor")
_GB_SUFFIX = re.compile(r"^(min_time|min_warmup_time|iterations|repeats|threads):|^(real_time|manual_time|process_time)$")
_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_name(run_name):
    """'sum/4Ki/t2/omp_simd/min_time:0.050/repeats:3/real_time' -> ('sum', '4Ki', 2, 'omp_simd')."""
    parts = [p for p in run_name.split("/") if not _GB_SUFFIX.match(p)]
    if len(parts) < 4 or not re.fullmatch(r"t\d+", parts[-2]):
        return None
    return parts[0], "/".join(parts[1:-2]), int(parts[-2][1:]), parts[-1]


def load(json_dir):
    """Every benchmark result in JSON_DIR: (records, machine, skipped names)."""
    records, machine, skipped = [], {}, []
    for path in sorted(glob.glob(os.path.join(json_dir, "*.json"))):
        try:
            with open(path) as f:
                data = json.load(f)
        except ValueError as e:  # a binary that crashed or is still running
            skipped.append("%s (not valid JSON: %s)" % (os.path.basename(path), e))
            continue
        ctx = data.get("context", {})
        family = ctx.get("bitexact.family")
        if family is None:
            skipped.append(os.path.basename(path) + " (no bitexact.family in its context)")
            continue
        for k in ("bitexact.cpu", "bitexact.isa", "num_cpus", "date", "library_build_type", "host_name", "load_avg"):
            if k in ctx and k not in machine:
                machine[k] = ctx[k]
        by_run = {}
        for b in data.get("benchmarks", []):
            if b.get("error_occurred"):
                continue
            by_run.setdefault(b.get("run_name", b["name"]), []).append(b)
        for run_name, runs in by_run.items():
            parsed = parse_name(run_name)
            if parsed is None:
                skipped.append(run_name + " (name does not follow <op>/<case>/t<threads>/<impl>)")
                continue
            op, case, threads, impl = parsed
            medians = [r for r in runs if r.get("run_type") == "aggregate" and r.get("aggregate_name") == "median"]
            if medians:
                r = medians[0]
                seconds = r["real_time"] * _UNIT[r.get("time_unit", "ns")]
            else:
                its = [r for r in runs if r.get("run_type", "iteration") == "iteration"]
                if not its:
                    continue
                seconds = statistics.median(r["real_time"] * _UNIT[r.get("time_unit", "ns")] for r in its)
            kind = ctx.get("bitexact.kind.%s/%s" % (op, impl), ctx.get("bitexact.kind." + impl, "unknown"))
            records.append(dict(family=family, op=op, case=case, threads=threads, impl=impl, kind=kind,
                                seconds=seconds))
    return records, machine, skipped


def compare(records):
    """Rows: one per (family, op, case, T, bitexact impl), with its fastest peers of each kind."""
    groups = {}
    for r in records:
        groups.setdefault((r["family"], r["op"], r["case"]), []).append(r)
    rows = []
    for (family, op, case), rs in groups.items():
        for t in sorted({r["threads"] for r in rs}):
            def best(kind):
                cands = []
                for impl in sorted({r["impl"] for r in rs if r["kind"] == kind}):
                    at_t = [r for r in rs if r["impl"] == impl and r["threads"] == t]
                    if at_t:
                        cands.append((at_t[0]["seconds"], impl))
                    else:  # single-threaded by nature: its t1 time stands at every T
                        at_1 = [r for r in rs if r["impl"] == impl and r["threads"] == 1]
                        if at_1 and t > 1:
                            cands.append((at_1[0]["seconds"], impl + " (1 thr)"))
                return min(cands) if cands else (None, None)
            nd_s, nd = best("nondeterministic")
            de_s, de = best("deterministic")
            fl_s, fl = best("floor")
            for r in sorted((r for r in rs if r["kind"] == "bitexact" and r["threads"] == t), key=lambda r: r["impl"]):
                rows.append(dict(family=family, op=op, case=case, threads=t, impl=r["impl"], seconds=r["seconds"],
                                 nd=nd, nd_seconds=nd_s, det=de, det_seconds=de_s, floor=fl, floor_seconds=fl_s,
                                 vs_nd=r["seconds"] / nd_s if nd_s else None,
                                 vs_det=r["seconds"] / de_s if de_s else None))
    order = {}
    for r in records:  # families, ops and cases in the order the binaries ran them
        order.setdefault((r["family"],), len(order))
        order.setdefault((r["family"], r["op"]), len(order))
        order.setdefault((r["family"], r["op"], r["case"]), len(order))
    rows.sort(key=lambda r: (order[(r["family"],)], order[(r["family"], r["op"])],
                             order[(r["family"], r["op"], r["case"])], r["threads"], r["impl"]))
    return rows


def fmt_time(s):
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return "%.3g %s" % (s / scale, unit)
    return "%.3g ns" % (s / 1e-9)


def fmt_ratio(x):
    return "-" if x is None else "%.2fx" % x


def machine_line(machine):
    return "%s, bitexact ISA %s, %s CPUs" % (machine.get("bitexact.cpu", "unknown CPU"),
                                            machine.get("bitexact.isa", "?"), machine.get("num_cpus", "?"))


def table_lines(rows, family):
    out = ["| op | case | T | bitexact | time | fastest non-deterministic peer | time | bitexact / it "
           "| fastest deterministic peer | time | bitexact / it |",
           "| --- | --- | ---: | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |"]
    for r in rows:
        if r["family"] != family:
            continue
        out.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["op"], r["case"], r["threads"], r["impl"], fmt_time(r["seconds"]), r["nd"] or "-",
            fmt_time(r["nd_seconds"]), fmt_ratio(r["vs_nd"]), r["det"] or "-", fmt_time(r["det_seconds"]),
            fmt_ratio(r["vs_det"])))
    return out


def families(rows):
    seen = []
    for r in rows:
        if r["family"] not in seen:
            seen.append(r["family"])
    return seen


def chart(rows, family, machine, path):
    """One PNG per family: T=1 and T=2 side by side; bars = time relative to the fastest
    non-deterministic peer (log scale), the ratio printed on each bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fam = [r for r in rows if r["family"] == family]
    threads = sorted({r["threads"] for r in fam})
    groups = []  # (op, case) in order
    for r in fam:
        if (r["op"], r["case"]) not in groups:
            groups.append((r["op"], r["case"]))
    colors = {"bitexact": ["#1f6fb4", "#5fa2dd", "#9cc7ee"], "nondeterministic": "#d62728", "deterministic": "#7f7f7f"}
    fig, axes = plt.subplots(1, len(threads), figsize=(6.5 * len(threads), 1.0 + 0.95 * len(groups) + 0.8),
                             squeeze=False, sharey=True)
    for ax, t in zip(axes[0], threads):
        labels, y = [], 0.0
        ticks = []
        for op, case in groups:
            rs = [r for r in fam if r["op"] == op and r["case"] == case and r["threads"] == t]
            if not rs:
                continue
            base = rs[0]["nd_seconds"] or rs[0]["det_seconds"]
            bars = [(r["impl"], r["seconds"], colors["bitexact"][i % 3]) for i, r in enumerate(rs)]
            if rs[0]["nd_seconds"]:
                bars.append((rs[0]["nd"], rs[0]["nd_seconds"], colors["nondeterministic"]))
            if rs[0]["det_seconds"]:
                bars.append((rs[0]["det"], rs[0]["det_seconds"], colors["deterministic"]))
            h = 0.8 / len(bars)
            for i, (name, sec, color) in enumerate(bars):
                yy = y + i * h
                rel = sec / base
                ax.barh(yy, rel, height=h * 0.9, color=color)
                ax.text(rel, yy, " %.2fx  %s (%s)" % (rel, name, fmt_time(sec)), va="center", fontsize=7)
            ticks.append(y + 0.4 - h / 2)
            labels.append("%s\n%s" % (op, case))
            y += 1.0
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.6)
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=8)
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, hi * 12)  # room for the labels
        ax.set_title("%d thread%s" % (t, "" if t == 1 else "s"), fontsize=10)
        ax.set_xlabel("time relative to the fastest non-deterministic peer (else the deterministic one)\n"
                      "lower is faster; log scale", fontsize=8)
    axes[0][0].invert_yaxis()  # once: the axes share y (first group on top)
    from matplotlib.patches import Patch
    fig.legend(handles=[Patch(color=colors["bitexact"][0], label="bitexact (deterministic)"),
                        Patch(color=colors["nondeterministic"], label="fastest non-deterministic peer"),
                        Patch(color=colors["deterministic"], label="fastest deterministic peer")],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("%s: cost of determinism\n%s%s" % (family, machine_line(machine),
                 ", " + machine["date"][:10] if machine.get("date") else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(rows, machine, skipped, out_dir, command=None):
    os.makedirs(out_dir, exist_ok=True)
    lines = ["# bitexact: the cost of determinism", "",
             "Machine: %s. Run: %s%s." % (machine_line(machine), machine.get("date", "?"),
                                          ", load average %.1f at the start (other work on the machine makes "
                                          "the numbers noisy)" % machine["load_avg"][0] if machine.get("load_avg") else ""),
             ""]
    if command:
        lines += ["Command: `%s`" % command, ""]
    lines += ["Times are wall clock, the median of the repetitions (short ones in a quick run). "
              "Ratios are bitexact time / peer time: below 1.00x bitexact is faster. Absolute numbers vary "
              "by machine; the ratios are the claim. A peer marked (1 thr) is single-threaded by nature and "
              "is compared at T=2 with its 1-thread time.", ""]
    if machine.get("library_build_type") == "debug":
        lines += ["Google Benchmark's own library (Debian's package) is a debug build; it only runs the "
                  "bookkeeping between timed batches. The timed code is compiled optimised (Release).", ""]
    for fam in families(rows):
        lines += ["## %s" % fam, "", "![%s](%s.png)" % (fam, fam), ""]
        lines += table_lines(rows, fam) + [""]
        chart(rows, fam, machine, os.path.join(out_dir, fam + ".png"))
    if skipped:
        lines += ["Not in the report (not following the naming convention):", ""]
        lines += ["- " + s for s in skipped] + [""]
    with open(os.path.join(out_dir, "index.md"), "w") as f:
        f.write("\n".join(lines))


def parse_audit(path):
    """{family: (configurations, disagreeing, verdict)} from bitexact-audit's output."""
    res = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                m = re.match(r"^(\w+): (\d+) configurations, (\d+) disagree with the reference: (.*)$", line.strip())
                if m:
                    res[m.group(1)] = (int(m.group(2)), int(m.group(3)), m.group(4))
    return res


def summary(rows, machine, audit, out_dir, quick):
    p = print
    p("=" * 100)
    p("bitexact: what you just ran%s" % (" (quick benchmark runs: median of 3 short repetitions, noisy)" if quick else ""))
    p("machine: %s" % machine_line(machine))
    p("")
    p("Bit-exactness (bitexact-audit: each op across thread counts, ISAs, emulated CUDA launch shapes):")
    fams = list(audit) + [f for f in families(rows) if f not in audit]
    for fam in fams:
        if fam in audit:
            n, bad, verdict = audit[fam]
            p("  %-10s %4d of %4d configurations agree with the reference  %s" % (fam, n - bad, n, verdict))
        else:
            p("  %-10s (not in bitexact-audit; its tests check it)" % fam)
    p("")
    p("Cost of determinism: bitexact time / the fastest non-deterministic peer's time (below 1.00x: bitexact")
    p("is faster; ratios measured in one run of one binary are the claim, absolute times vary by machine)")
    p("  %-9s %-15s %-17s %-14s %8s %8s   %s" % ("family", "op", "case", "bitexact", "T=1", "T=2", "peer"))
    seen = {}
    for r in rows:
        seen.setdefault((r["family"], r["op"], r["case"], r["impl"]), {})[r["threads"]] = r
    for (fam, op, case, impl), by_t in seen.items():
        first = by_t.get(1) or by_t.get(2)
        if first["nd"]:
            cells = [fmt_ratio(by_t[t]["vs_nd"]) if t in by_t else "-" for t in (1, 2)]
            peer = first["nd"]
        else:  # no non-deterministic peer: against the deterministic one, said so
            cells = [fmt_ratio(by_t[t]["vs_det"]) if t in by_t else "-" for t in (1, 2)]
            peer = (first["det"] or "-") + (" (deterministic peer)" if first["det"] else "")
        p("  %-9s %-15s %-17s %-14s %8s %8s   %s" % (fam, op[:15], case[:17], impl[:14], cells[0], cells[1],
                                                    peer.replace(" (1 thr)", "")))
    p("")
    p("Full tables with the deterministic peers and charts: %s" % os.path.join(os.path.abspath(out_dir), "index.md"))
    p("=" * 100)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json_dir")
    ap.add_argument("--out", default="report")
    ap.add_argument("--audit", help="bitexact-audit's output, for the summary")
    ap.add_argument("--summary", action="store_true", help="print the one-screen summary")
    ap.add_argument("--quick", action="store_true", help="say in the summary that the runs were short")
    ap.add_argument("--command", help="the command that produced the JSON, written into the report")
    a = ap.parse_args(argv)
    records, machine, skipped = load(a.json_dir)
    if not records:
        print("bench_report: no benchmark results in %s" % a.json_dir, file=sys.stderr)
        return 1
    rows = compare(records)
    write_report(rows, machine, skipped, a.out, a.command)
    if a.summary:
        summary(rows, machine, parse_audit(a.audit), a.out, a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
