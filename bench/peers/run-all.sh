#!/usr/bin/env bash
# Runs the peers one after another on one topic, several rounds in alternating order, and prints
# one summary line per run (spans/s, CPU seconds per million spans, peak RSS, load average, and
# with --seed/--spans how the edges compare with the replay's truth). Each run's full output line
# is kept in OUT_DIR (default: a temporary folder, printed at the end).
#   bench/peers/run-all.sh --brokers B --topic T [--rounds 1] [--peers consumer-perf,naive-node,flink,otelcol]
#                          [--seed S --spans N]     (what `tracefold replay` was given: edge check)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
BROKERS= TOPIC= ROUNDS=1 PEERS=consumer-perf,naive-node,flink,otelcol SEED= SPANS=
while [[ $# -gt 0 ]]; do
  case $1 in
    --brokers) BROKERS=$2; shift 2 ;;
    --topic) TOPIC=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --spans) SPANS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $BROKERS && -n $TOPIC ]] || { echo "usage: run-all.sh --brokers B --topic T [--rounds N] [--peers a,b] [--seed S --spans N]" >&2; exit 2; }
OUT_DIR=${OUT_DIR:-$(mktemp -d -t tracefold-peers-XXXXXX)}
mkdir -p "$OUT_DIR"
IFS=, read -r -a LIST <<<"$PEERS"
echo "# $(lscpu | sed -n 's/^Model name: *//p') x$(nproc), $(node --version), topic $TOPIC, $(date -u +%FT%TZ)"
printf '%-13s %5s %9s %9s %8s %10s %8s %12s %8s %5s  %s\n' peer round messages spans seconds spans/s cpuS 'cpuS/Mspans' rssMB load edges
for ((round = 1; round <= ROUNDS; round++)); do
  order=("${LIST[@]}")
  if ((round % 2 == 0)); then for ((i = 0; i < ${#LIST[@]}; i++)); do order[i]=${LIST[${#LIST[@]} - 1 - i]}; done; fi
  for peer in "${order[@]}"; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    out=$OUT_DIR/$peer-$round.json
    if ! /usr/bin/time -f '%M' -o "$OUT_DIR/$peer-$round.rss" bash "$HERE/$peer/run.sh" --brokers "$BROKERS" --topic "$TOPIC" \
      --group "peers-$peer-$round-$$" >"$out" 2>"$OUT_DIR/$peer-$round.err"; then
      echo "$peer round $round FAILED (see $OUT_DIR/$peer-$round.err)"; continue
    fi
    check=-
    if [[ -n $SEED && -n $SPANS && $peer != consumer-perf ]]; then
      check=$(node "$HERE/reference/reference.mjs" --truth-only --seed "$SEED" --spans "$SPANS" "$out" 2>/dev/null |
        sed -n 's/^== [^:]*: [^,]*, \([0-9]*\) pairs (truth \([0-9]*\)), \([0-9]*\) identical.*/\3 of \2 pairs identical to the truth (peer has \1)/p')
    fi
    rss=$(tail -1 "$OUT_DIR/$peer-$round.rss")
    python3 - "$out" "$peer" "$round" "$rss" "$load" "$check" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
peer, rnd, rss, load, check = sys.argv[2:]
spans = r.get("spans")
sec = r["seconds"] or 1e-9
rate = (spans or 0) / sec
cpu_per_m = r["cpuSeconds"] / (spans / 1e6) if spans else None
print(f'{peer:<13} {rnd:>5} {r["messages"]:>9} {spans if spans is not None else "-":>9} {r["seconds"]:>8.2f} '
      f'{(f"{rate:,.0f}" if spans else "-"):>10} {r["cpuSeconds"]:>8.2f} {(f"{cpu_per_m:.2f}" if cpu_per_m else "-"):>12} '
      f'{int(rss) / 1024:>8.0f} {load:>5}  {check if spans else "{:,.0f} msgs/s, {} MB/s".format(r["messages"] / sec, r.get("mbPerSecond"))}')
PY
  done
done
echo "# outputs in $OUT_DIR"
