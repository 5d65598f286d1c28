// kafkajs 2.2.4: what a member sees around a rebalance (instrumentation events only; no revoke hook).
const { Kafka, logLevel } = require('kafkajs');
const topic = process.argv[2];
const T0 = Date.now(); const ts = () => ((Date.now() - T0) / 1000).toFixed(2).padStart(6);
const log = (...a) => console.log(ts(), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const kafka = new Kafka({ brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
const group = `kclients-featkafkajs-${process.pid}`;
function member(name) {
  const c = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 });
  const E = c.events;
  c.on(E.REBALANCING, (e) => log(`${name}: event REBALANCING`, JSON.stringify(e.payload)));
  c.on(E.GROUP_JOIN, (e) => {
    log(`${name}: event GROUP_JOIN memberAssignment=${JSON.stringify(e.payload.memberAssignment)}`);
    // the only place to "seek on assign": consumer.seek() after the fact
    for (const p of e.payload.memberAssignment[topic] || []) c.seek({ topic, partition: p, offset: String(10 * (p + 1)) });
  });
  const first = {};
  return { c, start: async () => { await c.connect(); await c.subscribe({ topic, fromBeginning: true });
    c.run({ autoCommit: false, eachBatch: async ({ batch }) => { const p = batch.partition;
      if (!(p in first)) { first[p] = batch.messages[0].offset; log(`${name}: first batch p${p} from offset ${batch.messages[0].offset} (seek said ${10 * (p + 1)})`); }
      await sleep(200); } }); } };
}
(async () => {
  const A = member('A'); await A.start(); await sleep(4000);
  const B = member('B'); await B.start(); await sleep(8000);
  await B.c.disconnect(); await A.c.disconnect(); process.exit(0);
})();
setTimeout(() => process.exit(2), 60000).unref();
