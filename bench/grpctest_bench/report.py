"""The benchmark's results: per-scenario figures, the throughput prediction, the goals,
and the report files (latest.json, latest.md, latest.png, scaling.png).

The prediction: a scenario can go no faster than its slowest limit, where each limit
comes from CPU spent per call in that same run:
- the machine: the cores the path had (all, less what other processes used meanwhile)
  / CPU per call of every process on the path;
- each role: its busiest thread that every call passes and that can use one core at
  most (a Python process's event loop, an Envoy worker thread, h2load) / that thread's
  CPU per call.
Measured / predicted near 1 means the costs per call explain the throughput; well below
1 means cores sat idle while calls waited.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from grpctest_bench import scenarios as sc
from grpctest_bench.ghz import percentile
from grpctest_bench.h2load import LOAD_ROLE, Measurement
from grpctest_bench.scenarios import Scenario

ROLES = (LOAD_ROLE, "envoy", "server", "go_server", "collector")
# What each role of a mixed rotation is, by language (targets.envoy_stack).
LANGUAGE_ROLES = {"python": "server", "go": "go_server"}
Summary = dict[str, Any]


def summarize(scenario: Scenario, m: Measurement) -> Summary:
    latencies = sorted(m.latencies_us)  # (sorting it again, in percentile, is linear)

    def percentile_ms(fraction: float) -> float:
        return round(percentile(latencies, fraction) / 1000, 3)

    rps = m.requests / m.seconds if m.seconds else 0.0
    cpu_us = {
        role: round(seconds * 1e6 / m.requests, 1) if m.requests else 0.0
        for role, seconds in m.cpu.items()
    }
    summary: Summary = {
        "name": scenario.name,
        "group": scenario.group,
        "note": scenario.note,
        "baseline": scenario.baseline,
        "rps": round(rps, 1),
        "messages_per_s": round(rps * scenario.messages_per_call, 1),
        "p50_ms": percentile_ms(0.50),
        "p90_ms": percentile_ms(0.90),
        "p99_ms": percentile_ms(0.99),
        "errors": m.errors,
        "requests": m.requests,
        # None where h2load cannot count it (it miscounts when every connection closes).
        "bytes_per_call": round(m.traffic_bytes / m.requests, 1)
        if m.requests and m.traffic_bytes
        else None,
        "cpu_us_per_call": {**cpu_us, "total": round(sum(cpu_us.values()), 1)},
        "server_cpu_shares": _shares(m.server_process_cpu),
        # Envoy's socket reads and writes (readv, writev) per call: how well it batches.
        "envoy_read_write_calls_per_call": round(m.read_write_calls["envoy"] / m.requests, 2)
        if m.read_write_calls.get("envoy") and m.requests
        else None,
        # How busy the machine's cores were over the measured time, with anything, and
        # with the processes on the call's path.
        "cores_busy": _share(m.machine_busy_seconds, m.wall_seconds),
        "cores_busy_on_path": _share(sum(m.cpu.values()), m.wall_seconds),
    }
    summary.update(_prediction(cpu_us, m, rps))
    if "go_server" in m.cpu and scenario.target.calls_by_language is not None:
        summary.update(_by_language(cpu_us, scenario.target.calls_by_language()))
    return summary


def _by_language(cpu_us: dict[str, float], calls: dict[str, int]) -> Summary:
    """A mixed rotation's calls per language (Envoy's count for the target's whole run)
    and the CPU each language's replicas spent per call they answered."""
    total = sum(calls.values())
    shares = {language: calls[language] / total if total else 0.0 for language in calls}
    per_answered = {
        language: round(cpu_us[role] / shares[language], 1) if shares[language] else None
        for language, role in LANGUAGE_ROLES.items()
    }
    return {
        "call_shares": {language: round(share, 3) for language, share in shares.items()},
        "server_cpu_us_per_answered_call": per_answered,
    }


def mixed_rotation(summaries: Sequence[Summary]) -> dict[str, Any]:
    """Round robin against least request over the same mixed rotation, from one run,
    and which to run."""
    s = {summary["name"]: summary for summary in summaries}
    rr, lr = s.get("mixed_round_robin"), s.get("mixed_least_request")
    if rr is None or lr is None:
        return {}
    better = lr["rps"] > rr["rps"] and lr["p99_ms"] <= rr["p99_ms"]
    recommendation = (
        "least request: more calls per second and no worse a p99, the faster replica "
        "taking the larger share"
        if better
        else "round robin (as envoy.yaml has it): least request gave no more calls per "
        "second at an equal or lower p99 here"
    )
    fields = ("rps", "p99_ms", "call_shares", "server_cpu_us_per_answered_call")
    return {
        "round_robin": {f: rr.get(f) for f in fields},
        "least_request": {f: lr.get(f) for f in fields},
        "recommendation": recommendation,
    }


def _share(cpu_seconds: float, wall_seconds: float) -> float | None:
    cores = os.cpu_count() or 1
    return round(cpu_seconds / (cores * wall_seconds), 2) if wall_seconds else None


def _shares(per_process: dict[int, float]) -> list[float]:
    """Each busy server process's share of the servers' CPU, largest first."""
    total = sum(per_process.values())
    if total <= 0:
        return []
    shares = sorted((seconds / total for seconds in per_process.values()), reverse=True)
    return [round(share, 2) for share in shares if share >= 0.01]


def _prediction(cpu_us: dict[str, float], m: Measurement, rps: float) -> Summary:
    total = sum(cpu_us.values())
    if not total or not rps or not m.wall_seconds:
        return {"predicted_rps": None, "measured_over_predicted": None, "limit": None}
    # The cores the path had: all of them less what everything else on the machine
    # (idle targets' health checks, the kernel's own threads) used meanwhile.
    others = max(0.0, m.machine_busy_seconds - sum(m.cpu.values())) / m.wall_seconds
    limits = {"machine": ((os.cpu_count() or 1) - others) * 1e6 / total}
    # A thread that every call passes uses one core at most: a role's busiest such
    # thread caps its calls per second at its calls per CPU second.
    for role, seconds in m.busiest_thread_cpu.items():
        if seconds > 0:
            limits[role] = m.requests / seconds
    limit = min(limits, key=limits.__getitem__)
    return {
        "predicted_rps": round(limits[limit], 1),
        "measured_over_predicted": round(rps / limits[limit], 2),
        "limit": limit,
    }


# -- goals ----------------------------------------------------------------------------


class _Ratios:
    """Ratios between the scenarios of one run, rounded (0.0 where the base is 0)."""

    def __init__(self, summaries: Sequence[Summary]) -> None:
        self.of = {summary["name"]: summary for summary in summaries}

    def rps(self, a: str, b: str) -> float:
        s = self.of
        return round(s[a]["rps"] / s[b]["rps"], 2) if s[b]["rps"] else 0.0

    def cpu(self, a: str, b: str, role: str) -> float:
        base = self.of[b]["cpu_us_per_call"].get(role)
        return round(self.of[a]["cpu_us_per_call"].get(role, 0) / base, 2) if base else 0.0


def goals(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    """Each goal of the benchmark: its value in this run, its target, whether it is met."""
    r = _Ratios(summaries)
    s = r.of
    proxied = [x for x in summaries if _through_envoy(x) and x["group"] != sc.LATENCY]
    worst = min(proxied, key=lambda x: x["measured_over_predicted"] or 0)
    main, one, two = sc.MAIN, sc.scaling_name(1, 1), sc.scaling_name(1, 2)
    stream = s[f"stream_{main}"]["messages_per_s"] / s[main]["rps"] if s[main]["rps"] else 0.0
    added_p50 = s["latency_c1_envoy"]["p50_ms"] - s["latency_c1_direct"]["p50_ms"]
    grpc_bytes = s["server_direct"]["bytes_per_call"]
    rest_bytes = s["rest_keepalive"]["bytes_per_call"]
    bytes_ratio = round(grpc_bytes / rest_bytes, 2) if grpc_bytes and rest_bytes else 0.0
    checks = [
        ("py-server CPU per call / the Python floor's (server_direct_1w / python_floor_direct)",
         r.cpu("server_direct_1w", "python_floor_direct", "server"), "<=", 1.05),
        ("py-server CPU per call with its check of requests / without "
         "(server_direct_1w / server_direct_1w_unchecked)",
         r.cpu("server_direct_1w", "server_direct_1w_unchecked", "server"), "<=", 1.1),
        (f"lowest measured / predicted throughput through Envoy ({worst['name']})",
         worst["measured_over_predicted"] or 0.0, ">=", 0.9),
        (f"2 processes per replica / 1, through Envoy ({two} / {one} req/s)",
         r.rps(two, one), ">=", 1.25),
        (f"Envoy's CPU per call in front of py-server / of grpc-go ({main} / envoy_go)",
         r.cpu(main, "envoy_go", "envoy"), "<=", 1.5),
        (f"server-streaming messages/s / unary calls/s through Envoy ({main})",
         round(stream, 1), ">=", 10),
        ("py-server / the article's server (server_direct / article_sync_direct req/s)",
         r.rps("server_direct", "article_sync_direct"), ">=", 1.5),
        ("Envoy's added p50 latency at 1 call in flight (ms)", round(added_p50, 3), "<=", 0.15),
        (f"gRPC / REST behind the same Envoy ({two} / rest_behind_envoy req/s)",
         r.rps(two, "rest_behind_envoy"), ">=", 1.0),
        ("gRPC / REST bytes on the wire per call (server_direct / rest_keepalive)",
         bytes_ratio, "<=", 0.5),
    ]  # fmt: skip
    return [_goal(*check) for check in checks]


def _goal(name: str, value: float, op: str, target: float) -> dict[str, Any]:
    met = value >= target if op == ">=" else value <= target
    return {"goal": name, "value": value, "target": f"{op} {target}", "met": met}


def _through_envoy(summary: Summary) -> bool:
    return "envoy" in summary["cpu_us_per_call"]


def comparisons(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    """Every scenario with a baseline, as ratios to it (levers and settings)."""
    s = {summary["name"]: summary for summary in summaries}
    rows = []
    for summary in summaries:
        base = s.get(summary["baseline"] or "")
        if base is None or not base["rps"]:
            continue
        cpu, base_cpu = summary["cpu_us_per_call"], base["cpu_us_per_call"]
        rows.append(
            {
                "name": summary["name"],
                "baseline": base["name"],
                "note": summary["note"],
                "rps_ratio": round(summary["rps"] / base["rps"], 2),
                "cpu_per_call_ratio": {
                    role: round(cpu[role] / base_cpu[role], 2)
                    for role in (*ROLES, "total")
                    if cpu.get(role) and base_cpu.get(role)
                },
            }
        )
    return rows


# -- files ------------------------------------------------------------------------------


def write_markdown(report: dict[str, Any], path: Path) -> None:
    lines = _heading(report)
    groups = dict.fromkeys(s["group"] for s in report["scenarios"])
    for group in groups:
        lines += [
            "",
            f"## {group}",
            "",
            *_scenario_table([s for s in report["scenarios"] if s["group"] == group]),
        ]
    lines += _comparisons_markdown(report["comparisons"])
    lines += _goals_markdown(report["goals"])
    lines += _mixed_markdown(report.get("mixed_rotation") or {})
    pb = report["payload_bytes"]
    lines += [
        "",
        f"Payload bytes per call (request + response bodies): protobuf "
        f"{pb['protobuf']}, JSON {pb['json']} ({pb['protobuf'] / pb['json']:.2f}x).",
        "",
    ]
    path.write_text("\n".join(lines))


def _heading(report: dict[str, Any]) -> list[str]:
    """The title and how the run was made."""
    settings = report["settings"]
    return [
        f"# grpctest benchmark ({report['generated_at']})",
        "",
        f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}; "
        f"{settings['load_generator']}; {settings['rounds']} interleaved rounds of "
        f"{settings['seconds_per_round']} s after {settings['warmup_seconds']} s warm-up; "
        f"{settings['in_flight']} requests in flight. CPU per call in µs, by role: h2load "
        "(load), Envoy, the servers. Predicted: the throughput the slowest limit allows "
        "(see bench/README.md).",
    ]


def _comparisons_markdown(comparisons: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "## Against their baselines (ratios from this run)",
        "",
        "| scenario | against | req/s | CPU per call (total) | Envoy | servers | what |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in comparisons:
        cpu = row["cpu_per_call_ratio"]
        lines.append(
            f"| {row['name']} | {row['baseline']} | {row['rps_ratio']:.2f}x | "
            f"{_ratio(cpu.get('total'))} | {_ratio(cpu.get('envoy'))} | "
            f"{_ratio(cpu.get('server'))} | {row['note']} |"
        )
    return lines


def _goals_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [
        "",
        "## Goals (ratios from this run)",
        "",
        "| goal | measured | target | met |",
        "| --- | ---: | --- | --- |",
        *(
            f"| {g['goal']} | {g['value']} | {g['target']} | {'yes' if g['met'] else 'no'} |"
            for g in rows
        ),
    ]


def _mixed_markdown(mixed: dict[str, Any]) -> list[str]:
    if not mixed:
        return []
    lines = [
        "",
        "## Mixed rotation: Python and Go replicas behind one Envoy",
        "",
        "| policy | req/s | p99 ms | share of calls: Python, Go "
        "| server CPU µs per call answered: Python, Go |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for policy in ("round_robin", "least_request"):
        row = mixed[policy]
        shares, cpu = row["call_shares"] or {}, row["server_cpu_us_per_answered_call"] or {}
        lines.append(
            f"| {policy.replace('_', ' ')} | {row['rps']:.0f} | {row['p99_ms']:.2f} | "
            f"{_percent(shares.get('python'))}, {_percent(shares.get('go'))} | "
            f"{_us(cpu.get('python'))}, {_us(cpu.get('go'))} |"
        )
    return [*lines, "", f"Recommended: {mixed['recommendation']}."]


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _scenario_table(rows: Iterable[Summary]) -> list[str]:
    out = [
        "| scenario | req/s | p50 ms | p99 ms | errors | CPU µs/call: load | Envoy | servers "
        "| total | predicted req/s | measured/predicted (limit) | cores busy: all, path | what |",
        "| --- |" + " ---: |" * 11 + " --- |",
    ]
    for s in rows:
        cpu = s["cpu_us_per_call"]
        rate = f"{s['rps']:.0f}"
        if s["messages_per_s"] != s["rps"]:
            rate += f" ({s['messages_per_s']:.0f} msgs/s)"
        shares = s["server_cpu_shares"]
        note = s["note"]
        if s["envoy_read_write_calls_per_call"]:
            note += f"; Envoy's readv+writev per call {s['envoy_read_write_calls_per_call']}"
        if len(shares) > 1:
            note += f"; CPU shares of the server processes {shares}"
        if cpu.get("go_server"):
            note += f"; servers: Python {_us(cpu['server'])}, Go {_us(cpu['go_server'])}"
        predicted = "" if s["predicted_rps"] is None else f"{s['predicted_rps']:.0f}"
        ratio = (
            ""
            if s["measured_over_predicted"] is None
            else (f"{s['measured_over_predicted']:.2f} ({s['limit']})")
        )
        out.append(
            f"| {s['name']} | {rate} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['errors']} | "
            f"{_us(cpu.get(LOAD_ROLE))} | {_us(cpu.get('envoy'))} | {_us(cpu.get('server'))} | "
            f"{_us(cpu.get('total'))} | {predicted} | {ratio} | "
            f"{_percent(s['cores_busy'])}, {_percent(s['cores_busy_on_path'])} | {note} |"
        )
    return out


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Throughput and latency of the main scenarios, gRPC (blue) vs REST (red)."""
    shown = [s for s in report["scenarios"] if s["group"] in (sc.FLOORS, sc.REST)]
    names = [s["name"] for s in shown]
    colours = [
        "tab:red"
        if n.startswith("rest")
        else "tab:gray"
        if "floor" in n or "go" in n.split("_") or n.startswith(("article", "envoy_answers"))
        else "tab:blue"
        for n in names
    ]
    fig = Figure(figsize=(13, 7))
    ax_rps, ax_lat = fig.subplots(1, 2)
    ax_rps.barh(names, [s["rps"] for s in shown], color=colours)
    ax_rps.set_xscale("log")
    ax_rps.set_xlabel("requests / s, log scale (higher is better)")
    ax_rps.invert_yaxis()
    ax_lat.barh(names, [s["p99_ms"] for s in shown], color="lightgray", label="p99")
    ax_lat.barh(names, [s["p50_ms"] for s in shown], color=colours, label="p50")
    ax_lat.set_xlabel(f"latency ms at {report['settings']['in_flight']} in flight")
    ax_lat.invert_yaxis()
    ax_lat.set_yticklabels([])
    ax_lat.legend(loc="lower right")
    fig.suptitle(
        "grpctest: py-server gRPC (blue), REST (red), floors and baselines (gray); "
        f"{report['machine']['cpus']} CPUs, one run"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_scaling_chart(report: dict[str, Any], path: Path) -> None:
    """Throughput through Envoy by replicas and processes, measured beside predicted,
    and where each call's CPU goes."""
    by_name = {s["name"]: s for s in report["scenarios"]}
    fig = Figure(figsize=(13, 5.5))
    ax_rps, ax_cpu = fig.subplots(1, 2)
    for workers, colour in ((1, "tab:blue"), (2, "tab:orange")):
        points = [(r, by_name[sc.scaling_name(r, w)]) for r, w in sc.SCALING if w == workers]
        replicas = [r for r, _ in points]
        label = f"{workers} process{'es' if workers > 1 else ''} per replica"
        ax_rps.plot(
            replicas, [s["rps"] for _, s in points], "o-", color=colour, label=f"{label}: measured"
        )
        ax_rps.plot(
            replicas,
            [s["predicted_rps"] or 0 for _, s in points],
            "s--",
            color=colour,
            alpha=0.6,
            label=f"{label}: predicted",
        )
    ax_rps.set_xlabel("replicas behind Envoy")
    ax_rps.set_ylabel("calls / s")
    ax_rps.set_ylim(bottom=0)
    ax_rps.set_xticks([r for r, w in sc.SCALING if w == 1])
    ax_rps.legend(loc="lower right")
    names = [sc.scaling_name(r, w) for r, w in sc.SCALING]
    bottom = [0.0] * len(names)
    for role, colour in ((LOAD_ROLE, "tab:gray"), ("envoy", "tab:purple"), ("server", "tab:blue")):
        values = [by_name[n]["cpu_us_per_call"].get(role, 0.0) for n in names]
        ax_cpu.bar(names, values, bottom=bottom, color=colour, label=role)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax_cpu.set_ylabel("CPU µs per call")
    ax_cpu.tick_params(axis="x", rotation=45)
    ax_cpu.legend(loc="upper left")
    fig.suptitle(
        f"Through Envoy on {report['machine']['cpus']} CPUs: measured vs predicted from each "
        "role's CPU per call (one run)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
