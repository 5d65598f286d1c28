// kafkajs 2.2.4, eachBatch (settings mirror tracefold's source: 4 MiB/partition, no autocommit).
const { Kafka, logLevel } = require('kafkajs');
const { makeMeter, broker, threadCpu } = require('./common.cjs');
const [topic, expected] = [process.argv[2], +process.argv[3]];
const kafka = new Kafka({ clientId: 'kclients-bench', brokers: [broker], logLevel: logLevel.ERROR });
const consumer = kafka.consumer({ groupId: `kclients-kafkajs-${process.pid}-${Date.now()}`,
  maxBytesPerPartition: 4 << 20, sessionTimeout: 30000, heartbeatInterval: 3000 });
const m = makeMeter('kafkajs-2.2.4 eachBatch', expected);
let finished = false;
(async () => {
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1,
    eachBatch: async ({ batch, resolveOffset }) => {
      if (finished) return;
      const vals = batch.messages.map((x) => x.value);
      if (m.add(vals) && !finished) { finished = true; m.report({ threads: process.env.THREADS ? threadCpu() : undefined }); setImmediate(() => consumer.disconnect().then(() => process.exit(0))); }
      resolveOffset(batch.lastOffset());
    } });
})().catch((e) => { console.error(e); process.exit(1); });
setTimeout(() => { console.error('TIMEOUT at', m.count); process.exit(2); }, 900000).unref();
