import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QueueRow } from '../../src/db/queries/probe.js';
import { QueueSettings } from '../../src/publishers/queue-settings.js';

const row = (name: string, fields: Partial<QueueRow> = {}): QueueRow => ({
  name,
  paused: false,
  ratePerSec: null,
  concurrency: null,
  timeoutMs: null,
  ready: true,
  ...fields,
});

/** Settings on a clock the test moves by hand (ms). */
function settingsAt(served: string[] = []): { settings: QueueSettings; advance: (ms: number) => void } {
  let now = 0;
  const settings = new QueueSettings(served, () => now);
  return { settings, advance: (ms) => void (now += ms) };
}

describe('QueueSettings', () => {
  it('serves the listed queues, or all when none is listed', () => {
    assert.equal(settingsAt().settings.serves('any'), true);
    const { settings } = settingsAt(['a']);
    assert.equal(settings.serves('a'), true);
    assert.equal(settings.serves('b'), false);
  });

  it('anyReady: a served, unpaused queue with a job that could start', () => {
    const { settings } = settingsAt(['a', 'b']);
    settings.update([row('a', { paused: true }), row('b', { ready: false }), row('c')], []);
    assert.equal(settings.anyReady(), false, 'paused, not ready, not served');
    settings.update([row('b')], []);
    assert.equal(settings.anyReady(), true);
  });

  it('each live replica serving a queue gets an equal share of its rate', () => {
    const { settings, advance } = settingsAt();
    settings.update([row('r', { ratePerSec: 8 })], ['*', 'r,other', 'other']);
    // Share 4/s, bucket of max(1, min(2, 4), 1) = 2 tokens.
    assert.equal(settings.tokens('r'), 2);
    settings.took('r', 2);
    assert.equal(settings.tokens('r'), 0);
    assert.equal(settings.msUntilRateToken(), 250);
    advance(250);
    assert.equal(settings.tokens('r'), 1);
  });

  it('a burst of a quarter second of the share on fast queues; no bucket without a rate', () => {
    const { settings } = settingsAt();
    settings.update([row('fast', { ratePerSec: 100 }), row('free')], []);
    assert.equal(settings.tokens('fast'), 25);
    assert.equal(settings.tokens('free'), Infinity);
    settings.update([row('fast'), row('free')], []);
    assert.equal(settings.tokens('fast'), Infinity, 'the rate was removed');
    assert.equal(settings.msUntilRateToken(), Infinity);
  });

  it('claimable: leaves out paused queues, a zero cap and an empty bucket, and rotates the first', () => {
    const { settings } = settingsAt();
    settings.update(
      [row('a'), row('b'), row('paused', { paused: true }), row('capped', { concurrency: 0 }), row('rated', { ratePerSec: 1 })],
      [],
    );
    settings.took('rated', 1);
    const names = (): string[] => settings.claimable().map((q) => q.name);
    assert.deepEqual(names(), ['a', 'b']);
    assert.deepEqual(names(), ['b', 'a']);
    assert.deepEqual(names(), ['a', 'b']);
  });

  it('knows the queue names and their timeouts from the last update', () => {
    const { settings } = settingsAt();
    settings.update([row('a', { timeoutMs: 500 }), row('b')], []);
    assert.deepEqual(settings.names(), ['a', 'b']);
    assert.equal(settings.timeoutMsOf('a'), 500);
    assert.equal(settings.timeoutMsOf('b'), null);
    assert.equal(settings.timeoutMsOf('gone'), undefined);
  });
});
