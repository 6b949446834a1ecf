#!/usr/bin/env python3
"""The wall time of a study on 1, 8, 64 ... nodes, estimated from its plan and measured phase times.

    lethe run BIG.toml --plan > plan.json
    python3 bench/plan_estimate.py plan.json MEASURED/results.json [--nodes 1 8 64]

Each phase of plan.json gets the time results.json measured for the same kind of phase (same
scenario and method: the mean over the measured replicates; a search, its trials' total); a phase
with no measured counterpart (the report, a method the measured study did not run) is listed and
counted as 0 s. Then greedy list scheduling: a node takes, in the plan's
order, the first phase whose inputs are done, one phase per node at a time (a Slurm job per phase,
one node each). Prints the number of phases, the total phase time, the critical path, and the
estimated wall time per node count: an estimate, no more; queue waits and job start-up are not in it
(bench/RESULTS.md measures the latter on a local cluster).
"""
import argparse
import heapq
import json
import re
import statistics


def measured_times(results):
    """{(scenario, what): [seconds, ...]}: what is "original", "split", a method, or "relearn"."""
    times = {}
    for t in results["timings"]:
        phase = re.sub(r"^r\d+: ", "", t["phase"])
        if phase == "train original":
            key = ("", "original")
        else:
            scenario, what = phase.rsplit(": ", 1)
            key = (scenario, "relearn" if what == "measure and relearn" else what)
        times.setdefault(key, []).append(t["seconds"])
    # A search (replicate 0's, with [tune]) takes its trials' time: they run one after another.
    for sc in (results.get("tune") or {}).get("scenarios", []):
        trials = [t["seconds"] for m in sc["methods"] for t in m["trials"]]
        times[(sc["scenario"], "search")] = [sum(trials)]
    return times


def phase_key(p):
    if p["kind"] == "train":
        return ("", "original")
    if p["kind"] in ("split", "relearn", "search"):
        return (p["scenario"], p["kind"])
    return (p["scenario"], p["method"])


def schedule(phases, seconds, nodes):
    """The makespan of greedy list scheduling on `nodes` nodes."""
    index = {p["id"]: i for i, p in enumerate(phases)}
    finish = [None] * len(phases)
    running = []  # (end, phase index)
    now, started = 0.0, [False] * len(phases)
    while not all(f is not None for f in finish):
        for i, p in enumerate(phases):
            if len(running) >= nodes:
                break
            if not started[i] and all(finish[index[a]] is not None and finish[index[a]] <= now for a in p["after"]):
                started[i] = True
                heapq.heappush(running, (now + seconds[i], i))
        end, i = heapq.heappop(running)
        now, finish[i] = end, end
    return max(finish)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("plan")
    ap.add_argument("results")
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 8, 64])
    a = ap.parse_args()
    phases = json.load(open(a.plan))["phases"]
    measured = measured_times(json.load(open(a.results)))
    seconds, missing = [], set()
    for p in phases:
        values = measured.get(phase_key(p))
        if values is None:
            missing.add(p["kind"] if p["kind"] == "report" else ": ".join(x for x in phase_key(p) if x))
        seconds.append(statistics.mean(values) if values else 0.0)
    critical = [0.0] * len(phases)
    index = {p["id"]: i for i, p in enumerate(phases)}
    for i, p in enumerate(phases):
        critical[i] = seconds[i] + max((critical[index[x]] for x in p["after"]), default=0.0)
    print(f"{len(phases)} phases, {sum(seconds) / 60:.1f} min of phase time, critical path {max(critical) / 60:.1f} min")
    if missing:
        print(f"no measured time (counted as 0 s): {', '.join(sorted(missing))}")
    for n in a.nodes:
        print(f"{n:>4} node{'s' if n > 1 else ' '}: {schedule(phases, seconds, n) / 60:8.1f} min")


if __name__ == "__main__":
    main()
