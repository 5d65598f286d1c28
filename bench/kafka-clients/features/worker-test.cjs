// Does the client work inside a worker_thread? argv: client(kafkajs|node-rdkafka|confluent-rd|confluent-kjs) topic expected mode
// mode: worker-only | main-too (main thread also require()s the package first) | two-workers
const { Worker, isMainThread, workerData, parentPort, threadId } = require('worker_threads');
if (isMainThread) {
  const [client, topic, expected, mode = 'worker-only'] = process.argv.slice(2);
  const pkg = { kafkajs: 'kafkajs', 'node-rdkafka': 'node-rdkafka', 'confluent-rd': '@confluentinc/kafka-javascript', 'confluent-kjs': '@confluentinc/kafka-javascript' }[client];
  if (mode === 'main-too') { require(pkg); console.log('main thread loaded', pkg); }
  const n = mode === 'two-workers' ? 2 : 1;
  let done = 0;
  for (let i = 0; i < n; i++) {
    const w = new Worker(__filename, { workerData: { client, topic, expected: +expected, i } });
    w.on('message', (m) => console.log(`[worker ${i}]`, JSON.stringify(m)));
    w.on('error', (e) => console.log(`[worker ${i}] ERROR`, e && e.message));
    w.on('exit', (c) => { console.log(`[worker ${i}] exit`, c); if (++done === n) process.exit(0); });
  }
  setTimeout(() => { console.log('TIMEOUT'); process.exit(3); }, 60000).unref();
} else {
  const { client, topic, expected, i } = workerData;
  const group = `kclients-wt-${client}-${process.pid}-${i}-${Date.now()}`;
  let count = 0, bytes = 0;
  const done = () => { parentPort.postMessage({ threadId, count, bytes, ok: count >= expected }); };
  if (client === 'kafkajs' || client === 'confluent-kjs') {
    const K = client === 'kafkajs' ? require('kafkajs') : require('@confluentinc/kafka-javascript').KafkaJS;
    const kafka = client === 'kafkajs'
      ? new K.Kafka({ brokers: ['127.0.0.1:19092'], logLevel: K.logLevel.NOTHING })
      : new K.Kafka({ kafkaJS: { brokers: ['127.0.0.1:19092'], logLevel: K.logLevel.NOTHING } });
    const c = client === 'kafkajs' ? kafka.consumer({ groupId: group }) : kafka.consumer({ kafkaJS: { groupId: group, fromBeginning: true } });
    (async () => {
      await c.connect();
      await c.subscribe(client === 'kafkajs' ? { topic, fromBeginning: true } : { topics: [topic] });
      await c.run({ eachBatch: async ({ batch }) => { for (const m of batch.messages) { count++; bytes += m.value.length; }
        if (count >= expected) { done(); setImmediate(() => c.disconnect().then(() => process.exit(0))); } } });
    })().catch((e) => { parentPort.postMessage({ error: String(e && e.stack || e) }); process.exit(1); });
  } else {
    const K = require(client === 'node-rdkafka' ? 'node-rdkafka' : '@confluentinc/kafka-javascript');
    const c = new K.KafkaConsumer({ 'bootstrap.servers': '127.0.0.1:19092', 'group.id': group, ...(process.env.NO_REBALANCE_CB ? {} : { 'rebalance_cb': true }) }, { 'auto.offset.reset': 'earliest' });
    c.on('rebalance', (e, a) => parentPort.postMessage({ rebalance: e && e.code, partitions: a.length }));
    c.on('ready', () => { c.subscribe([topic]); c.setDefaultConsumeTimeout(100);
      const loop = () => c.consume(500, (err, msgs) => { if (err) return setTimeout(loop, 100);
        for (const m of msgs) { count++; bytes += m.value.length; }
        if (count >= expected) { done(); c.disconnect(() => process.exit(0)); } else setImmediate(loop); });
      loop(); });
    c.connect();
  }
}
