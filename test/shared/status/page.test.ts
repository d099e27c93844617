/**
 * The status page in headless Chromium (Debian's /usr/bin/chromium through playwright-core; no
 * browser is downloaded), served by a status server over the real services: the stages' numbers on
 * the page are the JSON's, the hostile dead-letter reason is shown as text and runs nothing, and the
 * page asks nothing of any other address. The screenshot goes to artifacts/status-page.png.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startStatusServer, statusFromEnv, type EnvStatus } from '../../../src/shared/status/server.js';
import type { PipelineStatus } from '../../../src/shared/status/types.js';
import { HOSTILE, statusKit, type StatusKit } from './statusKit.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = resolve('artifacts/status-page.png');

/** The value a `data-stat` key names in the JSON: its path, with the hub's partitions counted and groups found by sink. */
function valueAt(status: PipelineStatus, key: string): unknown {
  if (key === 'hub.partitions') return (status.hub as { partitions: unknown[] }).partitions.length;
  const group = /^hub\.groups\.(\w+)\.lag$/.exec(key);
  if (group) return (status.hub as { groups: { sink?: string; lag?: number }[] }).groups.find((g) => g.sink === group[1])?.lag;
  if (key === 'elasticsearch.history.documents.table') return valueAt(status, 'elasticsearch.history.documents');
  return key.split('.').reduce<unknown>((v, k) => (v === null || v === undefined ? undefined : (v as Record<string, unknown>)[k]), status);
}

describe('the status page in headless Chromium', () => {
  let kit: StatusKit;
  let status: EnvStatus;
  let server: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const requests: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)`);
    kit = await statusKit('st_page');
    status = statusFromEnv(kit.env);
    server = await startStatusServer(0, status.monitor);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    profile = mkdtempSync(join(tmpdir(), 'status-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (r) => requests.push(r.url()));
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await new Promise((done) => (server ? server.close(done) : done(undefined)));
    await status?.close();
    await kit?.close();
  });

  it("shows the stages with the JSON's numbers, the reasons as text, and fetches nothing else", async () => {
    const before = (await (await fetch(`${base}/status`)).json()) as PipelineStatus;
    await page.goto(`${base}/`, { waitUntil: 'load' });
    const after = (await (await fetch(`${base}/status`)).json()) as PipelineStatus;

    const stats = await Promise.all(
      (await page.locator('[data-stat]').all()).map(async (e) => ({
        key: (await e.getAttribute('data-stat'))!,
        value: (await e.getAttribute('data-value'))!,
        text: await e.textContent(),
      })),
    );
    const keys = stats.map((s) => s.key);
    for (const key of [
      'postgres.slot.lagBytes',
      'reader.changes',
      'hub.published',
      'hub.groups.elasticsearchSink.lag',
      'hub.groups.changeHistory.lag',
      'elasticsearch.documents',
    ]) {
      expect(keys).toContain(key);
    }
    expect(new Set(keys).size).toBe(keys.length);
    for (const s of stats) {
      if (s.key === 'postgres.slot.lagBytes' || s.key === 'postgres.slot.retainedBytes') {
        // WAL keeps growing (other tests write too): the page's figure lies between the two JSON collections around it.
        expect(Number(s.value)).toBeGreaterThanOrEqual(Number(valueAt(before, s.key)));
        expect(Number(s.value)).toBeLessThanOrEqual(Number(valueAt(after, s.key)));
      } else {
        expect({ key: s.key, value: Number(s.value) }).toEqual({ key: s.key, value: valueAt(after, s.key) });
      }
    }
    // The numbers themselves, as the person reads them, are the ones the test set up.
    const text = (key: string) => stats.find((s) => s.key === key)!.text;
    expect(text('hub.published')).toBe('8');
    expect(text('hub.groups.elasticsearchSink.lag')).toBe(String(kit.expected.esLag));
    expect(text('hub.groups.changeHistory.lag')).toBe(String(kit.expected.historyLag));
    expect(text('elasticsearch.documents')).toBe(String(kit.expected.documents));
    expect(text('reader.changes')).toBe(String(kit.expected.readerChanges));
    expect(text('deadLetters.containers.0.count')).toBe('3');
    expect(text('endToEnd.lagMs')).toBe('1.5 s');

    // The hostile reason is shown as text: no element from it, nothing ran.
    const reasons = await page.locator('#dead-letters td.reason').allTextContents();
    expect(reasons).toContain(`history refused: ${HOSTILE}`);
    expect(await page.$$('img')).toHaveLength(0);
    expect(await page.$$('script')).toHaveLength(0);
    expect(await page.title()).toBe('pg-cdc status');
    // The chart is inline SVG drawn from the samples the server keeps.
    expect(await page.$$('svg#throughput polyline')).not.toHaveLength(0);
    // Nothing from the internet, nor from anywhere but the status server.
    expect(requests.every((url) => url.startsWith(`${base}/`))).toBe(true);

    mkdirSync(resolve('artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    process.stdout.write(`status page screenshot: ${SCREENSHOT}\n`);
  });
});
