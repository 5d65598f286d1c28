const { Kafka, logLevel } = require('kafkajs');
const [cmd, topic, parts] = process.argv.slice(2);
const k = new Kafka({ clientId: 'kclients-admin', brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
(async () => {
  const a = k.admin(); await a.connect();
  if (cmd === 'create') console.log(await a.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: +parts || 6, replicationFactor: 1 }] }));
  else if (cmd === 'delete') { await a.deleteTopics({ topics: [topic] }); console.log('deleted', topic); }
  else if (cmd === 'list') console.log((await a.listTopics()).filter(t => t.startsWith('kclients-')));
  else if (cmd === 'offsets') { const o = await a.fetchTopicOffsets(topic); console.log(o, 'total', o.reduce((s, p) => s + (+p.high - +p.low), 0)); }
  else if (cmd === 'deletegroups') { const g = (await a.listGroups()).groups.map(g => g.groupId).filter(g => g.startsWith('kclients-')); if (g.length) await a.deleteGroups(g); console.log('deleted groups', g.length); }
  await a.disconnect();
})().catch(e => { console.error(e); process.exit(1); });
