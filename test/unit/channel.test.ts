import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Channel } from '../../src/channel.js';

describe('Channel', () => {
  it('delivers items in order', async () => {
    const ch = new Channel<number>(3);
    await ch.send(1);
    await ch.send(2);
    assert.equal(await ch.receive(), 1);
    assert.equal(await ch.receive(), 2);
  });

  it('makes send wait while full (backpressure) and resume when room frees', async () => {
    const ch = new Channel<number>(2);
    await ch.send(1);
    await ch.send(2);
    assert.equal(ch.room(), 0);
    let sent = false;
    const pending = ch.send(3).then(() => (sent = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(sent, false, 'send must wait while the channel is full');
    assert.equal(await ch.receive(), 1);
    await pending;
    assert.equal(sent, true);
    assert.equal(ch.size, 2);
  });

  it('offers without waiting: true while there is room or a receiver, false when full or closed', async () => {
    const ch = new Channel<number>(1);
    const got = ch.receive();
    assert.equal(ch.offer(1), true);
    assert.equal(await got, 1);
    assert.equal(ch.offer(2), true);
    assert.equal(ch.offer(3), false, 'full');
    assert.equal(ch.size, 1);
    ch.close();
    assert.equal(ch.offer(4), false, 'closed');
    await assert.rejects(ch.send(4), /closed/);
  });

  it('receives what is there now, up to a limit, and frees its room', async () => {
    const ch = new Channel<number>(3);
    for (const n of [1, 2, 3]) await ch.send(n);
    const blocked = ch.send(4);
    assert.deepEqual(ch.receiveNow(2), [1, 2]);
    await blocked;
    assert.deepEqual(ch.receiveNow(0), []);
    assert.deepEqual(ch.receiveNow(5), [3, 4]);
    assert.deepEqual(ch.receiveNow(5), []);
  });

  it('hands an item straight to a waiting receiver', async () => {
    const ch = new Channel<string>(1);
    const got = ch.receive();
    await ch.send('x');
    assert.equal(await got, 'x');
    assert.equal(ch.size, 0);
  });

  it('on close, lets receivers drain what is left, then ends iteration', async () => {
    const ch = new Channel<number>(5);
    await ch.send(1);
    await ch.send(2);
    ch.close();
    const seen: number[] = [];
    for await (const n of ch) seen.push(n);
    assert.deepEqual(seen, [1, 2]);
    await assert.rejects(ch.send(3), /closed/);
    assert.equal(ch.room(), 0);
  });

  it('wakes a waiting receiver with the end when closed empty', async () => {
    const ch = new Channel<number>(1);
    const got = ch.receive();
    ch.close();
    assert.equal(await got, undefined);
  });

  it('removes matching items and frees their room', async () => {
    const ch = new Channel<number>(4);
    for (const n of [1, 2, 3, 4]) await ch.send(n);
    assert.deepEqual(ch.remove((n) => n % 2 === 0), [2, 4]);
    assert.equal(ch.room(), 2);
    assert.deepEqual(ch.peekAll(), [1, 3]);
  });

  it('drain takes everything not yet received', async () => {
    const ch = new Channel<number>(3);
    await ch.send(7);
    await ch.send(8);
    assert.deepEqual(ch.drain(), [7, 8]);
    assert.equal(ch.size, 0);
  });

  it('rejects a capacity below one', () => {
    assert.throws(() => new Channel(0), RangeError);
  });

  it('keeps order across many sends and receives (compaction)', async () => {
    const ch = new Channel<number>(10);
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      await ch.send(i);
      if (i % 2 === 1) {
        out.push((await ch.receive())!, (await ch.receive())!);
      }
    }
    assert.deepEqual(out, Array.from({ length: 5000 }, (_, i) => i));
  });
});

describe('Channel memory', () => {
  it('does not keep received items reachable', async () => {
    const ch = new Channel<{ payload: string }>(10);
    for (let i = 0; i < 5; i++) await ch.send({ payload: 'x'.repeat(1000) });
    for (let i = 0; i < 5; i++) await ch.receive();
    const slots = (ch as unknown as { items: unknown[] }).items;
    assert.ok(slots.every((s) => s === undefined), 'received slots are cleared');
  });
});
