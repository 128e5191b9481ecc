import { test, expect, type Page } from '@playwright/test';
import http from 'node:http';
import { hydrated, liveConnected, signIn, signedHeaders, startShop } from '../tests/support';

/**
 * Webhook → DOM: `TABS` dashboards show the videos page of one workspace while callbacks arrive at
 * `RATE` per second for `CALLS` of its videos. Each tab notes when each video it shows turns
 * `completed` in its DOM; the time from sending that video's callback to that moment is printed as
 * percentiles. The callbacks go out from this process (Node's http, 64 keep-alive connections), signed as RCK
 * signs them; both clocks are this machine's.
 */
const TABS = Number(process.env.BENCH_TABS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const PRODUCTS = 100;

const BASE = process.env.BASE_URL ?? 'http://127.0.0.1:3000';

/** 64 keep-alive connections, as the Rust benchmark's client holds. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** A callback signed as RCK signs them; resolves to the answer's status. */
function signed(path: string, body: unknown, n: number): Promise<number> {
  const payload = JSON.stringify(body);
  const headers = { ...signedHeaders(`msg_bench_dom_${n}`, payload), 'content-length': String(Buffer.byteLength(payload)) };
  return new Promise((resolve, reject) => {
    const req = http.request(`${BASE}${path}`, { method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Starts noting, in the page, when each shown video's badge reads `completed`. */
async function watch(page: Page) {
  await page.evaluate(() => {
    const seen: Record<string, number> = {};
    (window as any).__completedAt = seen;
    const look = () => {
      const now = Date.now();
      for (const row of document.querySelectorAll('tr[data-video-id]')) {
        const id = row.getAttribute('data-video-id')!;
        if (!(id in seen) && row.querySelector('.badge[data-status="completed"]')) seen[id] = now;
      }
    };
    new MutationObserver(look).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      characterData: true,
    });
  });
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];

test(`webhook to DOM: ${TABS} dashboards, ${RATE} callbacks/s`, async ({ browser, request }) => {
  // A workspace with PRODUCTS products and at least CALLS videos (one bulk request per PRODUCTS).
  const { ids: videos, workspaceId } = await startShop(request, PRODUCTS, CALLS);

  // TABS dashboards on the workspace's videos page, each hydrated and following the live feed. One
  // browser context each, as separate browsers: a browser opens at most 6 HTTP/1.1 connections to a
  // host, and each dashboard keeps one open for its live feed.
  const signedIn = await browser.newContext();
  const first = await signedIn.newPage();
  await signIn(first, `/videos?workspaceId=${workspaceId}`);
  const session = await signedIn.storageState();
  const contexts = [signedIn];
  const pages = [first];
  for (let i = 1; i < TABS; i++) {
    const context = await browser.newContext({ storageState: session });
    const page = await context.newPage();
    await page.goto(`/videos?workspaceId=${workspaceId}`);
    await hydrated(page);
    contexts.push(context);
    pages.push(page);
  }
  for (const page of pages) {
    await liveConnected(page);
    await watch(page);
  }
  const shown: string[] = await first.locator('tr[data-video-id]').evaluateAll((rows) =>
    rows.map((r) => r.getAttribute('data-video-id')!),
  );
  expect(shown.length).toBeGreaterThan(0);

  // The shown videos spread evenly through the run, the others around them; paced at RATE.
  const rest = videos.filter((v) => !shown.includes(v));
  const order: string[] = [];
  const every = Math.max(1, Math.floor(videos.length / shown.length));
  for (let i = 0, s = 0; order.length < videos.length; i++) {
    if (i % every === every - 1 && s < shown.length) order.push(shown[s++]);
    else order.push(rest.shift() ?? shown[s++]);
  }
  // Every 5 ms, whatever has fallen due goes out (timers are too coarse to wait per call).
  const sentAt: Record<string, number> = {};
  const start = Date.now();
  const calls: Promise<number>[] = [];
  let next = 0;
  while (next < order.length) {
    const due = Math.min(order.length, Math.floor(((Date.now() - start) * RATE) / 1000) + 1);
    for (; next < due; next++) {
      sentAt[order[next]] = Date.now();
      calls.push(signed('/internal/videos/success', { videoId: order[next], video_url: 'https://cdn.test/v.mp4' }, next));
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const answers = await Promise.all(calls);
  const elapsed = (Date.now() - start) / 1000;
  expect(answers.filter((status) => status !== 200).length).toBe(0);

  // Every tab shows every shown video completed (bounded), then the figures.
  const latencies: number[] = [];
  let missing = 0;
  for (const page of pages) {
    await expect
      .poll(async () => page.evaluate((n) => Object.keys((window as any).__completedAt).length >= n, shown.length), {
        timeout: 30_000,
      })
      .toBe(true)
      .catch(() => undefined);
    const seen: Record<string, number> = await page.evaluate(() => (window as any).__completedAt);
    for (const id of shown) {
      if (id in seen) latencies.push(seen[id] - sentAt[id]);
      else missing++;
    }
  }
  latencies.sort((a, b) => a - b);
  console.log(
    `webhook -> DOM, ${TABS} dashboards open, ${order.length} callbacks at ${(order.length / elapsed).toFixed(0)}/s ` +
      `(asked ${RATE}/s): ${latencies.length} rows seen, p50 ${pct(latencies, 0.5)} ms, ` +
      `p95 ${pct(latencies, 0.95)} ms, max ${latencies[latencies.length - 1]} ms, ${missing} missed (target p95 <= 150 ms)`,
  );
  for (const context of contexts) await context.close();
});
