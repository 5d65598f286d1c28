import sys, json, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else 'results.jsonl')]
for d in rows:
    r = d['r']; print(d['round'], d['variant'].ljust(20), r['msgsPerSec'], r['MBps'], r['seconds'], r['cpuSeconds'], r['cpuSecPerMillion'], r['maxRssMB'], r['load1'], r['avgBatch'])
print()
by = {}
for d in rows: by.setdefault(d['variant'], []).append(d['r'])
for v, rs in by.items():
    f = lambda k: (st.median([r[k] for r in rs]), min(r[k] for r in rs), max(r[k] for r in rs))
    print(v.ljust(20), 'n=%d' % len(rs), 'msg/s med %d [%d-%d]' % f('msgsPerSec'), 'MB/s %.1f [%.1f-%.1f]' % f('MBps'),
          'cpu-s/M %.2f [%.2f-%.2f]' % f('cpuSecPerMillion'), 'cpu%% of core %.0f' % (100 * st.median([r['cpuSeconds'] / r['seconds'] for r in rs])), 'rss %d [%d-%d]' % f('maxRssMB'))
