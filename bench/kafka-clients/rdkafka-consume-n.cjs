// node-rdkafka (or @confluentinc/kafka-javascript's node-rdkafka-compatible API) KafkaConsumer,
// flowing loop of consume(n) batches. argv: topic expected [pkg] [batchSize]
const pkg = process.argv[4] || 'node-rdkafka';
const Kafka = require(pkg);
const { makeMeter, broker, threadCpu } = require('./common.cjs');
const extraConf = process.env.RDCONF ? JSON.parse(process.env.RDCONF) : {};
const [topic, expected, batchSize] = [process.argv[2], +process.argv[3], +(process.argv[5] || 1000)];
const m = makeMeter(`${pkg}@${require(pkg + '/package.json').version} (librdkafka ${Kafka.librdkafkaVersion}) consume(${batchSize})`, expected);
const consumer = new Kafka.KafkaConsumer({
  'bootstrap.servers': broker, 'group.id': `kclients-rd-${process.pid}-${Date.now()}`,
  'enable.auto.commit': false, 'max.partition.fetch.bytes': 4 << 20, 'client.id': 'kclients-bench', ...extraConf,
}, { 'auto.offset.reset': 'earliest' });
let finished = false;
consumer.on('ready', () => {
  consumer.subscribe([topic]);
  consumer.setDefaultConsumeTimeout(+(process.env.CONSUME_TIMEOUT_MS || 100));
  const loop = () => consumer.consume(batchSize, (err, msgs) => {
    if (err) { console.error(err); return setTimeout(loop, 100); }
    if (msgs.length) {
      const vals = new Array(msgs.length);
      for (let i = 0; i < msgs.length; i++) vals[i] = msgs[i].value;
      if (m.add(vals)) { finished = true; m.report({ conf: extraConf, threads: process.env.THREADS ? threadCpu() : undefined }); consumer.disconnect(() => process.exit(0)); return; }
    }
    if (!finished) setImmediate(loop);
  });
  loop();
});
consumer.on('event.error', (e) => console.error('event.error', e));
consumer.connect();
setTimeout(() => { console.error('TIMEOUT at', m.count); process.exit(2); }, 900000).unref();
