// Drives the official Infinispan Node.js client (npm `infinispan`) against a server and
// prints one JSON object: each operation's name with what the client returned, or the
// error text it rejected with. The Python test decides what is right; this script only
// records. Settings come from the environment:
//   GA_PORT (default 11222), GA_HOST (127.0.0.1), GA_VERSION ('auto' or '3.0', '4.1'…),
//   GA_CACHE (cache name; '' = default), GA_AUTH ('' or a JSON object for
//   `authentication`), GA_SSL ('' or a JSON object for `ssl`), GA_PREFIX (key prefix).
'use strict';
const infinispan = require('infinispan');

const env = process.env;
const opts = { version: env.GA_VERSION || 'auto', topologyUpdates: false };
if (env.GA_CACHE) opts.cacheName = env.GA_CACHE;
if (env.GA_AUTH) opts.authentication = JSON.parse(env.GA_AUTH);
if (env.GA_SSL) opts.ssl = JSON.parse(env.GA_SSL);
const server = { port: Number(env.GA_PORT || 11222), host: env.GA_HOST || '127.0.0.1' };
const p = env.GA_PREFIX || 'node-';

function plain(v) {
  if (Buffer.isBuffer(v)) return { buffer: v.toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v)) out[k] = plain(v[k]);
    return out;
  }
  return v === undefined ? null : v;
}

async function main() {
  const report = { ops: [] };
  const watchdog = setTimeout(() => {
    report.fatal = 'timeout: the server stopped answering';
    console.log(JSON.stringify(report));
    process.exit(3);
  }, Number(env.GA_TIMEOUT_MS || 20000));
  let client;
  try {
    client = await infinispan.client(server, opts);
  } catch (e) {
    report.connect_error = String(e && e.message ? e.message : e);
    clearTimeout(watchdog);
    console.log(JSON.stringify(report));
    return;
  }
  report.version = client.getProtocolVersion();
  const step = async (name, fn) => {
    try {
      report.ops.push([name, plain(await fn())]);
    } catch (e) {
      report.ops.push([name, { error: String(e && e.message ? e.message : e) }]);
    }
  };
  const only = (env.GA_ONLY || '').split(',').filter(Boolean);
  const want = (name) => only.length === 0 || only.includes(name);

  if (want('basic')) {
    await step('ping', () => client.ping());
    await step('clear', () => client.clear());
    await step('put', () => client.put(p + 'k1', 'v1'));
    await step('get', () => client.get(p + 'k1'));
    await step('get-missing', () => client.get(p + 'nope'));
    await step('put-previous', () => client.put(p + 'k1', 'v2', { previous: true }));
    await step('containsKey', () => client.containsKey(p + 'k1'));
    await step('containsKey-missing', () => client.containsKey(p + 'nope'));
    await step('putIfAbsent-present', () => client.putIfAbsent(p + 'k1', 'x'));
    await step('putIfAbsent-absent', () => client.putIfAbsent(p + 'k2', 'v2'));
    await step('putIfAbsent-previous', () => client.putIfAbsent(p + 'k2', 'x', { previous: true }));
    await step('replace', () => client.replace(p + 'k2', 'v3'));
    await step('replace-missing', () => client.replace(p + 'nope', 'v3'));
    await step('replace-previous', () => client.replace(p + 'k2', 'v4', { previous: true }));
    await step('getWithMetadata', async () => {
      const m = await client.getWithMetadata(p + 'k2');
      return { value: m.value, versionLength: m.version.length, lifespan: m.lifespan, maxIdle: m.maxIdle };
    });
    await step('replaceWithVersion', async () => {
      const m = await client.getWithMetadata(p + 'k2');
      const ok = await client.replaceWithVersion(p + 'k2', 'v5', m.version);
      const stale = await client.replaceWithVersion(p + 'k2', 'v6', m.version);
      return { ok, stale, now: await client.get(p + 'k2') };
    });
    await step('removeWithVersion', async () => {
      const m = await client.getWithMetadata(p + 'k2');
      const bad = Buffer.from(m.version); bad[7] ^= 0xff;
      const stale = await client.removeWithVersion(p + 'k2', bad);
      const ok = await client.removeWithVersion(p + 'k2', m.version);
      return { stale, ok, now: (await client.get(p + 'k2')) === undefined };
    });
    await step('remove', () => client.remove(p + 'k1'));
    await step('remove-missing', () => client.remove(p + 'k1'));
    await step('remove-previous', async () => {
      await client.put(p + 'k3', 'v3');
      return client.remove(p + 'k3', { previous: true });
    });
    await step('putAll', () => client.putAll([{ key: p + 'a', value: '1' }, { key: p + 'b', value: '2' },
      { key: p + 'c', value: '3' }]));
    await step('getAll', async () => {
      const all = await client.getAll([p + 'a', p + 'b', p + 'c', p + 'zz']);
      return all.sort((x, y) => (x.key < y.key ? -1 : 1));
    });
    await step('size', () => client.size());
    await step('iterator', async () => {
      const it = await client.iterator(2, { metadata: true });
      const seen = [];
      for (let i = 0; i < 100; i++) {
        const e = await it.next();
        if (e.done) break;
        seen.push([e.key, e.value]);
      }
      await it.close();
      return seen.sort();
    });
    await step('stats', () => client.stats());
    await step('lifespan', async () => {
      await client.put(p + 'ttl', 'gone-soon', { lifespan: '500ms' });
      const before = await client.get(p + 'ttl');
      const m = await client.getWithMetadata(p + 'ttl');
      await new Promise((r) => setTimeout(r, 900));
      return { before, lifespan: m.lifespan, after: (await client.get(p + 'ttl')) === undefined };
    });
    await step('maxIdle', async () => {
      await client.put(p + 'idle', 'v', { maxIdle: '1s' });
      const m = await client.getWithMetadata(p + 'idle');
      return { maxIdle: m.maxIdle, value: m.value };
    });
    await step('clear-final', () => client.clear());
    await step('size-after-clear', () => client.size());
  }
  if (want('unicode')) {
    await step('unicode', async () => {
      await client.put(p + 'ключ', 'значение ✓');
      return client.get(p + 'ключ');
    });
  }
  if (want('big')) {
    await step('big-value', async () => {
      const v = 'x'.repeat(1 << 20);
      await client.put(p + 'big', v);
      return (await client.get(p + 'big')).length;
    });
  }
  if (want('pipeline')) {
    await step('pipeline', async () => {
      const n = 500;
      const puts = [];
      for (let i = 0; i < n; i++) puts.push(client.put(p + 'pl' + i, 'v' + i));
      await Promise.all(puts);
      const gets = [];
      for (let i = 0; i < n; i++) gets.push(client.get(p + 'pl' + i));
      const vals = await Promise.all(gets);
      return vals.every((v, i) => v === 'v' + i) ? n : vals.slice(0, 5);
    });
  }
  if (want('timed')) {
    // The benchmark's sanity point (benchmarks/node_driver.py): GETs for GA_SECONDS with
    // GA_DEPTH of them in flight on the client's connection; only GA_ONLY=timed runs it.
    await step('timed', async () => {
      const seconds = Number(env.GA_SECONDS || 3);
      const depth = Number(env.GA_DEPTH || 16);
      const keys = Number(env.GA_KEYS || 1000);
      const value = 'x'.repeat(Number(env.GA_VALUE_SIZE || 100));
      const seed = [];
      for (let i = 0; i < keys; i++) seed.push(client.put(p + 't' + i, value));
      await Promise.all(seed);
      const started = Date.now();
      const end = started + seconds * 1000;
      let ops = 0;
      let wrong = 0;
      while (Date.now() < end) {
        const batch = [];
        for (let i = 0; i < depth; i++) batch.push(client.get(p + 't' + ((ops + i) % keys)));
        for (const v of await Promise.all(batch)) if (v !== value) wrong += 1;
        ops += depth;
      }
      return { ops, wrong, elapsed_ms: Date.now() - started };
    });
  }
  if (want('unsupported')) {
    await step('execute', () => client.execute('no-such-script', {}));
    await step('after-unsupported', () => client.ping());
  }
  if (want('matrix')) {
    // One call per operation, each recorded on its own, for the authorization matrix:
    // [node operation, Hot Rod opcode it sends]. Destructive ones come last.
    const k = p + 'm';
    const calls = [
      ['get', 0x03, () => client.get(k)],
      ['containsKey', 0x0f, () => client.containsKey(k)],
      ['getWithMetadata', 0x1b, async () => (await client.getWithMetadata(k) || {}).value],
      ['getAll', 0x2f, () => client.getAll([k])],
      ['size', 0x29, () => client.size()],
      ['iterator', 0x31, async () => { const it = await client.iterator(10); await it.close(); return 'ok'; }],
      ['stats', 0x15, async () => typeof (await client.stats())],
      ['put', 0x01, () => client.put(k, 'matrix')],
      ['putIfAbsent', 0x05, () => client.putIfAbsent(k + '-new', 'x')],
      ['replace', 0x07, () => client.replace(k, 'matrix')],
      ['putAll', 0x2d, () => client.putAll([{ key: k + '-all', value: 'x' }])],
      ['remove', 0x0b, () => client.remove(k + '-new')],
      ['clear', 0x13, () => client.clear()],
    ];
    for (const [name, opcode, fn] of calls) {
      try {
        report.ops.push(['matrix:' + name, { opcode, ok: plain(await fn()) }]);
      } catch (e) {
        report.ops.push(['matrix:' + name, { opcode, error: String(e && e.message ? e.message : e) }]);
      }
    }
  }
  if (want('listener')) {
    await step('listener', async () => {
      const seen = [];
      await client.put(p + 'before', 'x');
      const id = await client.addListener('create', (k, v) => seen.push(['create', k, v.length]),
        { includeState: true });
      await client.addListener('modify', (k, v) => seen.push(['modify', k, v.length]), { listenerId: id });
      await client.addListener('remove', (k) => seen.push(['remove', k]), { listenerId: id });
      await client.put(p + 'l1', 'a');
      await client.put(p + 'l1', 'b');
      await client.remove(p + 'l1');
      await client.putAll([{ key: p + 'l2', value: 'c' }]);
      for (let i = 0; i < 100 && seen.length < 5; i++) await new Promise((r) => setTimeout(r, 20));
      const removed = await client.removeListener(id);
      await client.put(p + 'l3', 'after');
      await new Promise((r) => setTimeout(r, 100));
      return { seen, removed };
    });
  }
  if (want('admin')) {
    const name = p + 'admin-cache';
    await step('admin:create', () => client.admin.createCache(name,
      '<local-cache name="' + name + '"><expiration lifespan="60000"/></local-cache>'));
    await step('admin:create-again', () => client.admin.createCache(name));
    await step('admin:getOrCreate', () => client.admin.getOrCreateCache(name));
    await step('admin:names', async () => (await client.admin.cacheNames()).includes(name));
    await step('admin:remove', () => client.admin.removeCache(name));
    await step('admin:names-after', async () => (await client.admin.cacheNames()).includes(name));
    await step('admin:remove-missing', () => client.admin.removeCache(name));
  }
  if (want('counters')) {
    const c = p + 'counter';
    await step('counter:isDefined-before', () => client.counterIsDefined(c + '-strong'));
    await step('counter:get-undefined', () => client.counterGet(c + '-none'));
    await step('counter:create-strong', () => client.counterCreate(c + '-strong',
      { type: 'strong', storage: 'volatile', initialValue: 10 }));
    await step('counter:create-again', () => client.counterCreate(c + '-strong', { type: 'strong' }));
    await step('counter:isDefined', () => client.counterIsDefined(c + '-strong'));
    await step('counter:config-strong', () => client.counterGetConfiguration(c + '-strong'));
    await step('counter:get', () => client.counterGet(c + '-strong'));
    await step('counter:addAndGet', () => client.counterAddAndGet(c + '-strong', 5));
    await step('counter:addAndGet-negative', () => client.counterAddAndGet(c + '-strong', -20));
    await step('counter:cas-hit', () => client.counterCompareAndSwap(c + '-strong', -5, 100));
    await step('counter:cas-miss', () => client.counterCompareAndSwap(c + '-strong', 7, 8));
    await step('counter:getAndSet', () => client.counterGetAndSet(c + '-strong', 42));
    await step('counter:reset', () => client.counterReset(c + '-strong'));
    await step('counter:after-reset', () => client.counterGet(c + '-strong'));
    await step('counter:create-bounded', () => client.counterCreate(c + '-bounded',
      { type: 'strong', storage: 'persistent', initialValue: 1, lowerBound: 0, upperBound: 3 }));
    await step('counter:config-bounded', () => client.counterGetConfiguration(c + '-bounded'));
    await step('counter:bounded-add', () => client.counterAddAndGet(c + '-bounded', 2));
    await step('counter:bounded-over', () => client.counterAddAndGet(c + '-bounded', 1));
    await step('counter:bounded-at-bound', () => client.counterGet(c + '-bounded'));
    await step('counter:bounded-cas-over', () => client.counterCompareAndSwap(c + '-bounded', 3, 9));
    await step('counter:bounded-set-under', () => client.counterGetAndSet(c + '-bounded', -1));
    await step('counter:after-refusals', () => client.counterGet(c + '-bounded'));
    await step('counter:create-invalid', () => client.counterCreate(c + '-invalid',
      { type: 'strong', initialValue: 9, lowerBound: 0, upperBound: 3 }));
    await step('counter:create-weak', () => client.counterCreate(c + '-weak',
      { type: 'weak', initialValue: 2, concurrencyLevel: 8 }));
    await step('counter:config-weak', () => client.counterGetConfiguration(c + '-weak'));
    await step('counter:weak-add', () => client.counterAddAndGet(c + '-weak', 3));
    await step('counter:weak-get', () => client.counterGet(c + '-weak'));
    await step('counter:weak-cas', () => client.counterCompareAndSwap(c + '-weak', 5, 6));
    await step('counter:remove', () => client.counterRemove(c + '-weak'));
    await step('counter:after-remove', async () => ({
      defined: await client.counterIsDefined(c + '-weak'), value: await client.counterGet(c + '-weak') }));
    await step('counter:remove-undefined', () => client.counterRemove(c + '-none'));
    await step('counter:config-undefined', () => client.counterGetConfiguration(c + '-none'));
    await step('counter:pipeline', async () => {
      const adds = [];
      for (let i = 0; i < 200; i++) adds.push(client.counterAddAndGet(c + '-strong', 1));
      const seen = await Promise.all(adds);
      return { distinct: new Set(seen).size, last: await client.counterGet(c + '-strong') };
    });
    await step('counter:after-counters', () => client.ping());
  }
  if (want('multimap')) {
    const k = p + 'mm';
    await step('multimap:get-missing', () => client.multimapGet(k + '1'));
    await step('multimap:put-a', () => client.multimapPut(k + '1', 'a'));
    await step('multimap:put-b', () => client.multimapPut(k + '1', 'b'));
    await step('multimap:put-a-again', () => client.multimapPut(k + '1', 'a'));
    await step('multimap:put-other', () => client.multimapPut(k + '2', 'b'));
    await step('multimap:get', async () => (await client.multimapGet(k + '1')).sort());
    await step('multimap:size', () => client.multimapSize());
    await step('multimap:containsKey', () => client.multimapContainsKey(k + '1'));
    await step('multimap:containsKey-missing', () => client.multimapContainsKey(k + '9'));
    await step('multimap:containsEntry', () => client.multimapContainsEntry(k + '1', 'b'));
    await step('multimap:containsEntry-missing', () => client.multimapContainsEntry(k + '1', 'z'));
    await step('multimap:containsValue', () => client.multimapContainsValue('b'));
    await step('multimap:containsValue-missing', () => client.multimapContainsValue('z'));
    await step('multimap:removeEntry', () => client.multimapRemoveEntry(k + '1', 'a'));
    await step('multimap:removeEntry-missing', () => client.multimapRemoveEntry(k + '1', 'a'));
    await step('multimap:after-removeEntry', () => client.multimapGet(k + '1'));
    await step('multimap:removeKey', () => client.multimapRemoveKey(k + '1'));
    await step('multimap:removeKey-missing', () => client.multimapRemoveKey(k + '1'));
    await step('multimap:size-after', () => client.multimapSize());
    await step('multimap:plain-get-unaffected', () => client.get(k + '2'));
    await step('multimap:after-multimap', () => client.ping());
  }
  if (want('seed')) {
    await step('seed', () => client.put(p + 'shared', 'from-node'));
  }
  if (want('read-shared')) {
    await step('read-shared', () => client.get(p + 'shared'));
  }
  await client.disconnect();
  clearTimeout(watchdog);
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.log(JSON.stringify({ fatal: String(e && e.stack ? e.stack : e) }));
  process.exit(2);
});
