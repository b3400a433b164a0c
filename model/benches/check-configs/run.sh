#!/usr/bin/env bash
# Benchmark of `heartbeat check` on the configurations in this folder.
#
# For every [AB]NN-*.yaml here it runs, one at a time,
#     /usr/bin/time -v BINARY check CONFIG --format json --max-seconds $MAX_SECONDS
# and records the exit code, the verdict, the searches the model checker ran (model, time
# unit, states, why each one stopped), the wall-clock time and the peak resident memory (RSS).
# It then prints a markdown table and a summary to stdout. The summary counts the configs
# that got a complete verdict (proven, failed or vacuous) within 10 s and 2048 MiB RSS.
# Group A: network assumptions in ms with whole-second timers. Group B: timers in multiples
# of 100 ms. Each file's "# why:" line says whether and why it is valid (rules R1-R6 in
# docs/invariants.md).
#
# Run from the workspace root:
#     cargo build --release --bin heartbeat && model/benches/check-configs/run.sh
# Usage: run.sh [BINARY]        BINARY defaults to target/release/heartbeat in the workspace
#                               (../../.. from this script).
# Environment:
#   MAX_SECONDS=N     --max-seconds per config (default 60). Inconclusive runs take this long.
#   CHECK_BENCH_OUT=DIR  where raw results go (default: a new directory from mktemp -d).
#                     The script refuses a directory inside the workspace.
#   TEXT_RERUN=0      skip the second, text-format run of inconclusive configs. That run only
#                     records the CLI's own words for the summary. It doubles their time.
#   RENDER_ONLY=1     do not run anything; re-render the table from CHECK_BENCH_OUT.
# Needs only bash, python3 and GNU time at /usr/bin/time. HEARTBEAT_* variables would
# override config fields, so the script refuses to run while any is set.
# Raw outputs in the results directory: NAME.json, NAME.time (time -v), NAME.rc,
# NAME.txt (text run, inconclusive only), loadavg.log, table.md.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${1:-$root/target/release/heartbeat}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
max_seconds=${MAX_SECONDS:-60}
render_only=${RENDER_ONLY:-0}
text_rerun=${TEXT_RERUN:-1}

if env | grep -q '^HEARTBEAT_'; then
  echo "HEARTBEAT_* variables are set and would override the configs; unset them:" >&2
  env | grep '^HEARTBEAT_' | cut -d= -f1 >&2
  exit 2
fi
command -v python3 > /dev/null || { echo "python3 is required" >&2; exit 2; }

if [ -n "${CHECK_BENCH_OUT:-}" ]; then
  out=$(python3 -c 'import os, sys; print(os.path.realpath(sys.argv[1]))' "$CHECK_BENCH_OUT")
  case $out/ in "$root"/*) echo "results directory $out is inside the workspace; pick another" >&2; exit 2 ;; esac
  mkdir -p "$out" || exit 2
else
  [ "$render_only" = 1 ] && { echo "RENDER_ONLY=1 needs CHECK_BENCH_OUT" >&2; exit 2; }
  out=$(mktemp -d "${TMPDIR:-/tmp}/heartbeat-check-bench.XXXXXX") || exit 2
fi
echo "results: $out" >&2

if [ "$render_only" != 1 ]; then
  [ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is required" >&2; exit 2; }
  [ -x "$bin" ] || { echo "no executable at $bin; build it: cargo build --release --bin heartbeat" >&2; exit 2; }
  version=$("$bin" --version 2>/dev/null || echo unknown)
  rm -f "$out"/*.json "$out"/*.time "$out"/*.rc "$out"/*.txt "$out"/loadavg.log "$out"/table.md
  echo "$version" > "$out/binary.txt"; echo "$bin" >> "$out/binary.txt"
  echo "max_seconds $max_seconds" >> "$out/binary.txt"
  for cfg in "$here"/[AB][0-9][0-9]-*.yaml; do
    name=$(basename "$cfg" .yaml)
    echo "$name load-before $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/loadavg.log"
    echo "$name ..." >&2
    /usr/bin/time -v "$bin" check "$cfg" --format json --max-seconds "$max_seconds" \
      > "$out/$name.json" 2> "$out/$name.time"
    rc=$?
    echo "$rc" > "$out/$name.rc"
    if [ "$rc" = 3 ] && [ "$text_rerun" = 1 ]; then
      "$bin" check "$cfg" --max-seconds "$max_seconds" > "$out/$name.txt" 2> /dev/null
    fi
  done
fi

python3 - "$here" "$out" <<'PY'
import glob, json, os, re, sys

here, out = sys.argv[1], sys.argv[2]
GOAL_S, GOAL_MIB = 10.0, 2048.0


def wall_and_rss(path):
    t = open(path).read()
    wall = re.search(r'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)', t)
    rss = re.search(r'Maximum resident set size \(kbytes\): (\d+)', t)
    if not wall or not rss:
        return None, None
    parts = [float(p) for p in wall.group(1).split(':')]
    secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return secs, int(rss.group(1)) / 1024


def searches_text(mc):
    return '<br>'.join(f"{s['model']}@{s['unit_ms']} ms: {s['states']:,}, {s['stop']}"
                       for s in mc.get('searches', [])) or '—'


rows, notes, recs = [], [], []
for cfg in sorted(glob.glob(os.path.join(here, '[AB][0-9][0-9]-*.yaml'))):
    name = os.path.basename(cfg)[:-5]
    why = next((m.group(1).strip() for m in map(lambda l: re.match(r'#\s*why:\s*(.*)', l), open(cfg)) if m), '')
    try:
        rc = open(f'{out}/{name}.rc').read().strip()
        secs, mib = wall_and_rss(f'{out}/{name}.time')
    except OSError as e:
        rows.append(f'| {name} | (not run: {e.strerror}) | | | | | | | |')
        continue
    wall_s = f'{secs:.2f}' if secs is not None else '?'
    rss_s = f'{mib:.1f}' if mib is not None else '?'
    try:
        j = json.load(open(f'{out}/{name}.json'))
    except (OSError, ValueError) as e:
        rows.append(f'| {name} | (no JSON output: {e}) | | {rc} | | | | {wall_s} | {rss_s} |')
        continue
    c = j['config']; cl, sv, nw = c['client'], c['server'], c['network']
    key = (f"c {cl['ping_interval']}/{cl['pong_timeout']} S{cl['slow_threshold']} N{cl['max_missed_pongs']} "
           f"conn {cl['connect_timeout']} stall {cl['stall_threshold']}; "
           f"s {sv['ping_interval']}/idle {sv['idle_timeout']} m {sv['min_client_ping_interval']} k{sv['max_ping_strikes']}; "
           f"net λ {nw['max_latency']} δ {nw['max_server_delay']} L {nw['max_timer_lateness']}")
    mc = j.get('model_check') or {}
    verdict = mc.get('verdict', '—')
    if mc.get('limit'):
        verdict += f" ({mc['limit']})"
    valid = j['validation']['ok']
    total = sum(s['states'] for s in mc.get('searches', []))
    states = f'{total:,}'
    if 'states' in mc and mc['states'] != total:
        states += f" (CLI total {mc['states']:,})"
    rows.append(f"| {name} | {key} | {'yes' if valid else 'no'} | {rc} | {verdict} | {states} | "
                f"{searches_text(mc)} | {wall_s} | {rss_s} |")

    complete = rc in ('0', '1') and mc.get('verdict') in ('proven', 'failed', 'vacuous')
    in_goal = complete and secs is not None and mib is not None and secs <= GOAL_S and mib <= GOAL_MIB
    said = []
    if os.path.exists(f'{out}/{name}.txt'):
        said = [l.strip() for l in open(f'{out}/{name}.txt')
                if l.strip().startswith(('Model check:', 'INCONCLUSIVE', 'To finish'))]
    recs.append(dict(name=name, group=name[0], valid=valid, rc=rc, verdict=mc.get('verdict'),
                     limit=mc.get('limit'), complete=complete, in_goal=in_goal, secs=secs, mib=mib,
                     searches=mc.get('searches', []), said=said))

    line = f'- **{name}**: {why}'
    errs = j['validation']['errors']
    if errs:
        line += ' — CLI: ' + '; '.join(e if isinstance(e, str) else json.dumps(e) for e in errs)
    fails = [f"{p['name']} (counterexample of {p['path_len']} steps)"
             for p in mc.get('properties', []) if p.get('status') == 'fails']
    if fails:
        line += ' — model check fails ' + ', '.join(fails)
    notes.append(line)

out_lines = []
binary = open(f'{out}/binary.txt').read().split('\n') if os.path.exists(f'{out}/binary.txt') else []
if binary:
    out_lines.append(f"Binary: `{binary[1] if len(binary) > 1 else '?'}` ({binary[0]}); "
                     + (binary[2].replace('max_seconds', '--max-seconds') if len(binary) > 2 else '') + '.')
if os.path.exists(f'{out}/loadavg.log'):
    loads = [float(l.split()[2]) for l in open(f'{out}/loadavg.log') if len(l.split()) > 2]
    if loads:
        out_lines.append(f'1-minute load average before each config: {min(loads):.2f}–{max(loads):.2f}.')
out_lines.append('Key values: `c PING/PONG_TIMEOUT S<slow> N<missed> conn <connect> stall <stall>; '
                 's <server ping>/idle <idle> m <min client ping> k<strikes>; '
                 'net λ <latency> δ <server delay> L <timer lateness>`. '
                 '"states" is the sum over the searches. Wall time and peak RSS come from `/usr/bin/time -v` '
                 '(resolution 10 ms).')
out_lines.append('')
out_lines.append('| config | key values | valid? | exit | verdict | states | searches (model@unit ms: states, stop) | wall s | peak RSS MiB |')
out_lines.append('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
out_lines += rows
out_lines.append('')
out_lines += notes
out_lines.append('')
out_lines.append(f'### Complete verdict within {GOAL_S:g} s and {GOAL_MIB:g} MiB RSS')
out_lines.append('')
for g in sorted({r['group'] for r in recs}):
    for v in (True, False):
        sel = [r for r in recs if r['group'] == g and r['valid'] == v]
        if not sel:
            continue
        ok = [r for r in sel if r['in_goal']]
        miss = [r['name'] for r in sel if not r['in_goal']]
        out_lines.append(f"- group {g}, {'valid' if v else 'invalid'}: {len(ok)}/{len(sel)}"
                         + (f" (not: {', '.join(miss)})" if miss else ''))
ok = [r for r in recs if r['in_goal']]
out_lines.append(f'- total: {len(ok)}/{len(recs)}')
proven = [r for r in recs if r['verdict'] == 'proven' and r['secs'] is not None]
if proven:
    s = max(proven, key=lambda r: r['secs'])
    out_lines.append(f"- slowest proven: {s['name']}, {s['secs']:.2f} s, {s['mib']:.1f} MiB RSS")
for r in recs:
    if r['complete']:
        continue
    last = r['searches'][-1] if r['searches'] else None
    line = f"- **{r['name']}**: exit {r['rc']}, {r['verdict']}"
    if r['limit']:
        line += f" ({r['limit']})"
    if last:
        line += f"; last search {last['model']}@{last['unit_ms']} ms stopped at {last['stop']} after {last['states']:,} states"
    models = sorted({s['model'] for s in r['searches']})
    line += f"; models run: {', '.join(models)}"
    if r['said']:
        line += ' — CLI (text run): ' + ' / '.join(f'"{x}"' for x in r['said'])
    out_lines.append(line)

text = '\n'.join(out_lines) + '\n'
open(f'{out}/table.md', 'w').write(text)
sys.stdout.write(text)
PY
