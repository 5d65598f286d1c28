// Shared measurement helper for the consumer benchmarks.
// Window = first message received -> last expected message received (group join excluded),
// plus "total" = process start of consumer setup -> last message (join included).
const os = require('os');
function makeMeter(client, expected) {
  const tSetup = process.hrtime.bigint();
  const cpuSetup = process.cpuUsage();
  let t0 = null, cpu0 = null, count = 0, bytes = 0, touch = 0, batches = 0;
  return {
    add(values) { // values: array of Buffers (message values)
      if (t0 === null) { t0 = process.hrtime.bigint(); cpu0 = process.cpuUsage(); }
      batches++;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v) { bytes += v.length; touch ^= v[v.length >> 1]; }
        count++;
      }
      return count >= expected;
    },
    get count() { return count; },
    report(extra = {}) {
      const t1 = process.hrtime.bigint();
      const cpu = process.cpuUsage(cpu0), cpuAll = process.cpuUsage(cpuSetup);
      const s = Number(t1 - t0) / 1e9, sTot = Number(t1 - tSetup) / 1e9;
      const cpuS = (cpu.user + cpu.system) / 1e6;
      const r = {
        client, messages: count, bytes, batches, avgBatch: +(count / batches).toFixed(1), touch,
        seconds: +s.toFixed(2), totalSecondsInclJoin: +sTot.toFixed(2),
        msgsPerSec: Math.round(count / s), MBps: +(bytes / s / 1e6).toFixed(1),
        cpuSeconds: +cpuS.toFixed(2), cpuUser: +(cpu.user / 1e6).toFixed(2), cpuSys: +(cpu.system / 1e6).toFixed(2),
        cpuSecPerMillion: +(cpuS / (count / 1e6)).toFixed(2),
        cpuSecPerMillionInclJoin: +(((cpuAll.user + cpuAll.system) / 1e6) / (count / 1e6)).toFixed(2),
        maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
        load1: +os.loadavg()[0].toFixed(2), ...extra,
      };
      console.log('RESULT ' + JSON.stringify(r));
      return r;
    },
  };
}
module.exports = { makeMeter, broker: process.env.BROKER || '127.0.0.1:19092' };
// Per-thread CPU (Linux): { threadName: cpuSeconds } aggregated by name.
module.exports.threadCpu = function threadCpu() {
  const fs = require('fs'); const out = {};
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const s = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = +tid === process.pid ? 'MAIN(js thread)' : s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')).replace(/\d+$/, '#');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      out[name] = +((out[name] || 0) + (+f[11] + +f[12]) / 100).toFixed(2);
    } catch {}
  }
  return out;
};
