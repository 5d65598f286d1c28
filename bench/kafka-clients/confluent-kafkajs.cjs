// @confluentinc/kafka-javascript, KafkaJS-compatible promisified API, eachBatch.
// argv: topic expected [js.consumer.max.batch.size (default 32 = library default)]
const { KafkaJS } = require('@confluentinc/kafka-javascript');
const { makeMeter, broker, threadCpu } = require('./common.cjs');
const extraConf = process.env.RDCONF ? JSON.parse(process.env.RDCONF) : {};
const [topic, expected] = [process.argv[2], +process.argv[3]];
const maxBatch = process.argv[4] || '32';
const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers: [broker], clientId: 'kclients-bench', logLevel: KafkaJS.logLevel.ERROR } });
const consumer = kafka.consumer({
  kafkaJS: { groupId: `kclients-ckjs-${process.pid}-${Date.now()}`, fromBeginning: true, autoCommit: false,
    maxBytesPerPartition: 4 << 20 },
  'js.consumer.max.batch.size': maxBatch, ...extraConf,
});
const m = makeMeter(`confluent-kafka-javascript@${require('@confluentinc/kafka-javascript/package.json').version} KafkaJS eachBatch max.batch.size=${maxBatch}`, expected);
let finished = false;
(async () => {
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  await consumer.run({ eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1,
    eachBatch: async ({ batch, resolveOffset }) => {
      if (finished) return;
      const vals = batch.messages.map((x) => x.value);
      resolveOffset(batch.lastOffset());
      if (m.add(vals) && !finished) { finished = true; m.report({ conf: extraConf, threads: process.env.THREADS ? threadCpu() : undefined }); setImmediate(() => consumer.disconnect().then(() => process.exit(0))); }
    } });
})().catch((e) => { console.error(e); process.exit(1); });
setTimeout(() => { console.error('TIMEOUT at', m.count); process.exit(2); }, 900000).unref();
