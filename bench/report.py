"""Turns bench/results/latest.json into the tables of docs/performance.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
COMMAND = "make bench"


def ratio(project: float, floor: float) -> str:
    if not floor or math.isnan(project) or math.isnan(floor):
        return "-"
    return f"{project / floor:.2f}x"


def best_load(relay: list[dict[str, Any]], bound_ms: float = 50) -> int:
    passing = [
        r["offered_per_s"]
        for r in relay
        if "failed" not in r
        and not r.get("lost")
        and r["p99_ms"] < bound_ms
        and r["achieved_per_s"] >= 0.95 * r["offered_per_s"]
    ]
    return max(passing) if passing else 0


def tables(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}, "
        f"Redis {m['redis']}; {m['packages']}. Servers pinned to CPU 0, the load generator to CPU 1 "
        "(except the rows of two workers with a core each, which measure the start of the hour only). "
        f"Reproduce every row with `{COMMAND}` (about 45 minutes); raw figures in `bench/results/latest.json`.",
        "",
        "### Relay (offer / answer / candidate; 100 rooms of 2; ~3 KB SDP, ~250-byte candidates)",
        "",
        "| setup | offered msg/s | achieved | p50 ms | p99 ms | server CPU ms/msg | Redis CPU ms/msg | floor p99 ms | floor CPU ms/msg | CPU vs floor |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["setups"]:
        floors = {r["offered_per_s"]: r for r in s.get("floor_relay", [])}
        for r in s.get("relay", []):
            f = floors.get(r["offered_per_s"], {})
            if "failed" in r:
                lines.append(
                    f"| {s['layer']}, {s['workers']} worker(s) | {r['offered_per_s']} | **failed**: {r['failed']} | | | | | {f.get('p99_ms', '-')} | {f.get('server_cpu_ms_per_msg', '-')} | |"
                )
                continue
            lost = f" ({r['lost']} lost)" if r.get("lost") else ""
            lines.append(
                f"| {s['layer']}, {s['workers']} worker(s) | {r['offered_per_s']} | {r['achieved_per_s']}{lost} | {r['p50_ms']} | {r['p99_ms']} | "
                f"{r['server_cpu_ms_per_msg']} | {r['redis_cpu_ms_per_msg']} | {f.get('p99_ms', '-')} | {f.get('server_cpu_ms_per_msg', '-')} | "
                f"{ratio(r['server_cpu_ms_per_msg'], f.get('server_cpu_ms_per_msg', 0))} |"
            )
    lines += ["", "Highest offered load with p99 under 50 ms:", ""]
    for s in results["setups"]:
        if s.get("relay"):
            lines.append(
                f"- {s['layer']}, {s['workers']} worker(s): Confab {best_load(s['relay'])} msg/s, floor {best_load(s['floor_relay'])} msg/s"
            )
    lines += [
        "",
        "### Joining",
        "",
        "| setup | join p50 ms | join p99 ms | floor p50 ms | storm: people / rooms / window | admitted / refused | all pairs done (s) | fullest room |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["setups"]:
        j, st, fj = s.get("join"), s.get("storm"), s.get("floor_join")
        if not (j and fj):
            continue
        storm = (
            f"{st['people']} / {st['rooms']} / {st['window_s']} s | {st['admitted']} / {st['refused']} | "
            f"{st['all_pairs_done_s']} | {st['max_room_occupancy']} of {st['capacity']}"
            if st
            else "- | - | - | -"
        )
        lines.append(
            f"| {s['layer']}, {s['workers']} worker(s) | {j['p50_ms']} | {j['p99_ms']} | {fj['p50_ms']} | {storm} |"
        )
    lines += [
        "",
        "### The start of the hour: 200 rooms that hold one person each, one newcomer each at once",
        "",
        "| setup | welcome p50 ms | p99 ms | slowest ms | admitted | rooms over capacity | floor p50 ms | floor p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["setups"]:
        b, fb = s.get("burst"), s.get("floor_burst")
        if b and fb:
            lines.append(
                f"| {s['layer']}, {s['workers']} worker(s) | {b['p50_ms']} | {b['p99_ms']} | {b['max_ms']} | {b['admitted']} of {b['joins']} | "
                f"{b['over_capacity_rooms']} | {fb['p50_ms']} | {fb['p99_ms']} |"
            )
    lines += [
        "",
        "### Chat fan-out (sent to last receiver of the room, stored first; 48 people in rooms, 40 messages/s together)",
        "",
        "| setup | rooms of | messages | lost | p50 ms | p99 ms | floor p50 ms | floor p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["setups"]:
        for c, f in zip(s.get("chat", []), s.get("floor_chat", []), strict=True):
            lines.append(
                f"| {s['layer']}, {s['workers']} worker(s) | {c['room_size']} | {c['messages']} | {c.get('lost', 0)} | {c['p50_ms']} | {c['p99_ms']} | {f['p50_ms']} | {f['p99_ms']} |"
            )
    lines += [
        "",
        "### Idle connections (each pings at the interval `welcome` names)",
        "",
        "| setup | connections | joined in (s) | ping every (s) | memory per connection (KB) | heartbeat CPU (% of one core) | floor memory (KB) | floor CPU (%) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["setups"]:
        for i, f in zip(s.get("idle", []), s.get("floor_idle", []), strict=True):
            lines.append(
                f"| {s['layer']}, {s['workers']} worker(s) | {i['connections']} | {i.get('joined_in_s', '-')} | {i['heartbeat_s']:g} | {i['rss_per_connection_kb']} | {i['heartbeat_cpu_percent_of_one_core']} | {f['rss_per_connection_kb']} | {f['heartbeat_cpu_percent_of_one_core']} |"
            )
    call = results.get("call_setup")
    if call:
        floor = call.get("minimal")

        def call_row(words: str, key: str) -> str:
            def worst(figures: dict[str, Any]) -> float:
                return max(r[key] for r in figures["runs"])

            ours = f"{call['median_' + key]} | {worst(call)}"
            theirs = f"{floor['median_' + key]} | {worst(floor)}" if floor else "- | -"
            return f"| {words} | {ours} | {theirs} |"

        lines += [
            "",
            "### Browser call setup (headless Chromium, fake devices, loopback)",
            "",
            f"{call['calls']} calls of two people, {call['layer']} layer, {call['workers']} worker; "
            "the second person presses Join now on the pre-join screen "
            "(`bench/call_setup.py`, run by `make bench`). Beside Confab, the same calls on the "
            "smallest call page there can be (`bench/minimal.html` on the floor relay: a camera "
            "preview held from the start, one plain offer and answer), in the same run.",
            "",
            "| measure | Confab median ms | worst | minimal page median ms | worst |",
            "| --- | --- | --- | --- | --- |",
            call_row(
                "Join now click to the first decoded remote frame (newcomer)", "click_to_frame_ms"
            ),
            call_row(
                "the same click to the first frame decoded by the person already there",
                "first_person_click_to_frame_ms",
            ),
            call_row("the same click to both decoding (the later of the two)", "both_decoding_ms"),
            call_row(
                "the newcomer's peer connection made to connected",
                "connection_to_connected_ms",
            ),
            call_row(
                "page opened (navigation start) to the newcomer's first decoded frame",
                "open_to_frame_ms",
            ),
        ]
    sfu = results.get("sfu")
    if sfu:
        mesh5, sfu5 = sfu["mesh_room_of_5"], sfu["sfu_room_of_5"]
        lines += [
            "",
            "### SFU rooms against the mesh (headless Chromium, fake devices, Janus 1.1.2)",
            "",
            f"Measured {sfu['date']} by `bench/sfu.py` (run by `make bench`): one daphne worker "
            "and one Janus in the bench's own network namespace, every person a Chromium page.",
            "",
            "| measure | mesh | SFU |",
            "| --- | --- | --- |",
            f"| upload per person, room of 5 (kbit/s, mean of 5 pages over 20 s) | {mesh5['upload_kbit_s_per_person']} | {sfu5['upload_kbit_s_per_person']} |",
            f"| Join now click to the first decoded frame, room of 2 (median ms) | {sfu['mesh_join_to_frame_ms']['median']} | {sfu['sfu_join_to_frame_ms']['median']} |",
            f"| Janus CPU in the room of 5 (% of one core) | - | {sfu5['janus_cpu_percent']} |",
            f"| Janus CPU per forwarded stream (% of one core; 40 streams) | - | {sfu5['janus_cpu_percent_per_stream']} |",
            "",
            "| people in one SFU room | lowest frames/s decoded from anyone | median frames/s |",
            "| --- | --- | --- |",
        ]
        for row in sfu["capacity"]:
            if "failed" in row:
                lines.append(f"| {row['people']} | failed: {row['failed']} | - |")
            else:
                lines.append(f"| {row['people']} | {row['min_fps']} | {row['median_fps']} |")
    return "\n".join(lines)


def write_report(results: dict[str, Any], path: Path) -> None:
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{tables(results)}\n{END}{tail}")
