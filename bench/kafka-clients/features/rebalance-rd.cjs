// Rebalance / seek-on-assign / pause-resume / commit / static-membership experiment for the
// node-rdkafka API (node-rdkafka, or @confluentinc/kafka-javascript's compatible KafkaConsumer).
// argv: pkg topic strategy(range|cooperative-sticky) scenario(rebalance|static)
const [pkg, topic, strategy, scenario] = process.argv.slice(2);
const Kafka = require(pkg);
const T0 = Date.now(); const ts = () => ((Date.now() - T0) / 1000).toFixed(2).padStart(6);
const log = (...a) => console.log(ts(), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const group = `kclients-feat-${scenario}-${strategy}-${process.pid}`;
// "Our own offset store": partition p resumes at offset 10*(p+1).
const store = (p) => 10 * (p + 1);
const fmt = (a) => a.map((t) => t.partition + (t.offset !== undefined ? '@' + t.offset : '')).join(',');

function member(name, extra = {}) {
  const st = { name, firstOffset: {}, counts: {}, lastByPart: {}, unassignedAt: null, assignedAt: null };
  const c = new Kafka.KafkaConsumer({
    'bootstrap.servers': '127.0.0.1:19092', 'group.id': group, 'client.id': name,
    'enable.auto.commit': false, 'partition.assignment.strategy': strategy,
    'session.timeout.ms': 10000, 'heartbeat.interval.ms': 1000,
    ...extra,
    rebalance_cb: function (err, assignment) {
      const coop = this.rebalanceProtocol() === 'COOPERATIVE';
      if (err.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
        // Seek-on-assign: give each newly assigned partition an offset from our own store.
        const withOffsets = assignment.map((tp) => ({ topic: tp.topic, partition: tp.partition, offset: store(tp.partition) }));
        log(`${name}: ASSIGN (${this.rebalanceProtocol()}) [${fmt(assignment)}] -> assigning [${fmt(withOffsets)}]`);
        coop ? this.incrementalAssign(withOffsets) : this.assign(withOffsets);
        st.assignedAt = Date.now();
      } else if (err.code === Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) {
        const lost = typeof this.assignmentLost === 'function' ? this.assignmentLost() : 'n/a';
        if (st.closing) { log(`${name}: REVOKE on close [${fmt(assignment)}]: checkpoint must be sync here; unassigning now`); coop ? this.incrementalUnassign(assignment) : this.unassign(); return; }
        log(`${name}: REVOKE (${this.rebalanceProtocol()}) [${fmt(assignment)}] lost=${lost}; checkpointing for 2 s before unassign...`);
        // Simulated checkpoint: async work BEFORE giving the partitions up.
        setTimeout(() => {
          if (!st.running) { log(`${name}: (consumer already disconnected: librdkafka unassigned on close without waiting)`); return; }
          const pos = this.position(assignment.map((tp) => ({ topic: tp.topic, partition: tp.partition })));
          log(`${name}: checkpoint done (positions ${fmt(pos)}), now ${coop ? 'incrementalUnassign' : 'unassign'}`);
          coop ? this.incrementalUnassign(assignment) : this.unassign();
          st.unassignedAt = Date.now();
        }, 2000);
      } else log(`${name}: rebalance error`, err);
    },
  }, { 'auto.offset.reset': 'earliest' });
  st.c = c;
  st.ready = new Promise((res) => c.on('ready', res));
  c.on('event.error', (e) => log(`${name}: event.error`, e.message));
  st.start = async () => {
    c.connect(); await st.ready; c.subscribe([topic]); c.setDefaultConsumeTimeout(100);
    st.running = true;
    const loop = () => c.consume(200, (err, msgs) => {
      if (!st.running) return;
      for (const m of msgs || []) {
        const p = m.partition;
        if (!(p in st.firstOffset)) { st.firstOffset[p] = m.offset; log(`${name}: first message of p${p} at offset ${m.offset} (store said ${store(p)})`); }
        st.counts[p] = (st.counts[p] || 0) + 1; st.lastByPart[p] = Date.now();
      }
      setTimeout(loop, 5);  // slow the loop a bit so the run lasts a few seconds
    });
    loop();
  };
  st.stop = () => new Promise((res) => { st.running = false; st.closing = true; const t = Date.now(); c.disconnect(() => { log(`${name}: disconnected in ${Date.now() - t} ms`); res(); }); });
  return st;
}

(async () => {
  log(`pkg=${pkg} librdkafka=${Kafka.librdkafkaVersion} strategy=${strategy} scenario=${scenario}`);
  if (scenario === 'rebalance') {
    const A = member('A');
    await A.start();
    await sleep(4000);
    // (c) pause/resume one partition
    const a = A.c.assignments(); log(`A assignments(): [${fmt(a)}]`);
    const p0 = a[0].partition; const before = A.counts[p0] || 0;
    A.c.pause([{ topic, partition: p0 }]); const pausedAt = Date.now(); log(`A: pause p${p0} (count so far ${before})`);
    // (d) manual commit of arbitrary offsets
    A.c.commitSync([{ topic, partition: p0, offset: 123 }, { topic, partition: a[1].partition, offset: 7 }]);
    await new Promise((res) => A.c.committed(a.map((t) => ({ topic, partition: t.partition })), 5000, (e, r) => { log(`A: committed() after commitSync(123,7): ${fmt(r)}`, e || ''); res(); }));
    // (a) second member joins: A must get REVOKE first and B must only get partitions after A unassigns
    const B = member('B');
    await B.start();
    await sleep(9000);
    log(`B assigned at +${((B.assignedAt - T0) / 1000).toFixed(2)} s, A unassigned at +${((A.unassignedAt - T0) / 1000).toFixed(2)} s -> ${B.assignedAt >= A.unassignedAt ? 'OK: B got partitions only after A finished its revoke callback' : 'B was assigned BEFORE A unassigned'}`);
    const after = Object.keys(A.lastByPart).filter((p) => +p === p0 && A.lastByPart[p] > pausedAt).length;
    log(`A: paused p${p0} received messages after pause? ${after ? 'yes' : 'no'}; A assignments now [${fmt(A.c.assignments())}], B [${fmt(B.c.assignments())}]`);
    const bp = B.c.assignments().map((t) => t.partition)[0];
    if (A.c.assignments().some((t) => t.partition === p0)) { A.c.resume([{ topic, partition: p0 }]); await sleep(1500); log(`A: resumed p${p0}: got ${A.counts[p0] - before} more`); }
    else log(`A: p${p0} moved away during rebalance (pause state does not travel with the partition)`);
    log(`first offsets A ${JSON.stringify(A.firstOffset)} B ${JSON.stringify(B.firstOffset)}`);
    await B.stop(); await A.stop();
  } else if (scenario === 'static') {
    const A = member('A', { 'group.instance.id': 'kclients-static-a' });
    const B = member('B', { 'group.instance.id': 'kclients-static-b' });
    await A.start(); await sleep(1500); await B.start(); await sleep(8000);
    const aParts = fmt(A.c.assignments()); log(`A [${aParts}] B [${fmt(B.c.assignments())}]`);
    log('A: disconnect (static member: no LeaveGroup); restarting same group.instance.id in 2 s');
    await A.stop(); await sleep(2000);
    const A2 = member('A2', { 'group.instance.id': 'kclients-static-a' });
    await A2.start(); await sleep(6000);
    log(`A2 [${fmt(A2.c.assignments())}] (A had [${aParts}]), B [${fmt(B.c.assignments())}] -> B rebalance callbacks after initial: see log above`);
    await A2.stop(); await B.stop();
  }
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
setTimeout(() => { log('TIMEOUT'); process.exit(2); }, 90000).unref();
