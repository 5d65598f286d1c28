// Same experiment for @confluentinc/kafka-javascript's KafkaJS-compatible (promisified) API.
// argv: topic strategy(roundrobin|range|cooperative-sticky) scenario(rebalance|static)
const { KafkaJS } = require('@confluentinc/kafka-javascript');
const [topic, strategy, scenario] = process.argv.slice(2);
const T0 = Date.now(); const ts = () => ((Date.now() - T0) / 1000).toFixed(2).padStart(6);
const log = (...a) => console.log(ts(), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const group = `kclients-featkjs-${scenario}-${strategy}-${process.pid}`;
const store = (p) => 10 * (p + 1);
const fmt = (a) => a.map((t) => t.partition + (t.offset !== undefined ? '@' + t.offset : '')).join(',');
const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers: ['127.0.0.1:19092'], logLevel: KafkaJS.logLevel.WARN } });

function member(name, extra = {}) {
  const st = { name, firstOffset: {}, counts: {}, inBatch: 0, assignedAt: null, revokeDoneAt: null };
  const c = kafka.consumer({
    kafkaJS: { groupId: group, fromBeginning: true, autoCommit: false, sessionTimeout: 10000, heartbeatInterval: 1000,
      partitionAssigners: [strategy] },
    'js.consumer.max.batch.size': 50,
    ...extra,
    // librdkafka-style rebalance callback; the promisified API awaits it.
    rebalance_cb: async (err, assignment, fns) => {
      if (err.code === KafkaJS.ErrorCodes.ERR__ASSIGN_PARTITIONS) {
        const withOffsets = assignment.map((tp) => ({ topic: tp.topic, partition: tp.partition, offset: store(tp.partition) /* must be a number here (rdkafka-style), a string throws */ }));
        log(`${name}: ASSIGN [${fmt(assignment)}] -> assign(${fmt(withOffsets)})`);
        fns.assign(withOffsets);
        st.assignedAt = Date.now();
      } else {
        log(`${name}: REVOKE [${fmt(assignment)}] lost=${fns.assignmentLost()} eachBatch in flight=${st.inBatch}; checkpointing 2 s...`);
        await sleep(2000);
        log(`${name}: checkpoint done (eachBatch in flight=${st.inBatch}); returning -> library unassigns`);
        st.revokeDoneAt = Date.now();
      }
    },
  });
  st.c = c;
  st.start = async () => {
    await c.connect(); await c.subscribe({ topics: [topic] });
    c.run({ eachBatchAutoResolve: true, eachBatch: async ({ batch }) => {
      st.inBatch++;
      const p = batch.partition;
      if (!(p in st.firstOffset)) { st.firstOffset[p] = +batch.messages[0].offset; log(`${name}: first batch of p${p} starts at offset ${batch.messages[0].offset} (store said ${store(p)})`); }
      st.counts[p] = (st.counts[p] || 0) + batch.messages.length; st.last = Date.now();
      await sleep(30); // pretend to work
      st.inBatch--;
    } });
  };
  return st;
}

(async () => {
  if (scenario === 'rebalance') {
    const A = member('A'); await A.start(); await sleep(4000);
    const a = A.c.assignment(); log(`A assignment(): [${fmt(a)}]`);
    const p0 = a[0].partition; const before = A.counts[p0] || 0;
    A.c.pause([{ topic, partitions: [p0] }]); const pausedAt = Date.now(); log(`A: pause p${p0}; paused() = ${JSON.stringify(A.c.paused())}`);
    await A.c.commitOffsets([{ topic, partition: p0, offset: '123' }, { topic, partition: a[1].partition, offset: '7' }]);
    log(`A: committed() after commitOffsets(123,7): ${fmt(await A.c.committed())}`);
    const B = member('B'); await B.start(); await sleep(10000);
    log(`B assigned at +${((B.assignedAt - T0) / 1000).toFixed(2)}s, A revoke callback finished at +${((A.revokeDoneAt - T0) / 1000).toFixed(2)}s -> ${B.assignedAt >= A.revokeDoneAt ? 'OK: B got partitions only after A\'s revoke callback finished' : 'B assigned BEFORE A finished'}`);
    log(`A now [${fmt(A.c.assignment())}] paused ${JSON.stringify(A.c.paused())}, B [${fmt(B.c.assignment())}]; A p${p0} count ${before} -> ${A.counts[p0] || 0}`);
    if (A.c.assignment().some((t) => t.partition === p0)) { A.c.resume([{ topic, partitions: [p0] }]); await sleep(2000); log(`A: resumed p${p0}: count now ${A.counts[p0]}`); }
    log(`first offsets A ${JSON.stringify(A.firstOffset)} B ${JSON.stringify(B.firstOffset)}`);
    await B.c.disconnect(); await A.c.disconnect();
  } else {
    const A = member('A', { 'group.instance.id': 'kclients-kjs-static-a' });
    const B = member('B', { 'group.instance.id': 'kclients-kjs-static-b' });
    await A.start(); await sleep(1500); await B.start(); await sleep(8000);
    const aParts = fmt(A.c.assignment()); log(`A [${aParts}] B [${fmt(B.c.assignment())}]`);
    log('A: disconnect; restart with the same group.instance.id in 2 s');
    await A.c.disconnect(); await sleep(2000);
    const A2 = member('A2', { 'group.instance.id': 'kclients-kjs-static-a' }); await A2.start(); await sleep(6000);
    log(`A2 [${fmt(A2.c.assignment())}] (A had [${aParts}]), B [${fmt(B.c.assignment())}]`);
    await A2.c.disconnect(); await B.c.disconnect();
  }
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
setTimeout(() => { log('TIMEOUT'); process.exit(2); }, 90000).unref();
