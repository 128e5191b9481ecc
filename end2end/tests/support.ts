import { expect, type APIRequestContext, type Page, type TestInfo } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';

export const ADMIN_EMAIL = process.env.E2E_ADMIN_EMAIL ?? 'e2e-admin@racky.test';
export const ADMIN_PASSWORD = process.env.E2E_ADMIN_PASSWORD ?? 'e2e-admin-password';

let counter = 0;
const unique = () => `${Date.now().toString(36)}${(counter++).toString(36)}`;

/** Calls the REST API and returns `data`, failing the test on an unexpected status. */
export async function api(
  request: APIRequestContext,
  method: 'GET' | 'POST',
  path: string,
  token?: string,
  body?: unknown,
  status = method === 'POST' ? [200, 201, 202] : [200],
): Promise<any> {
  const res = await request.fetch(path, {
    method,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    data: body,
  });
  const json = await res.json();
  expect(status, `${method} ${path} -> ${res.status()} ${JSON.stringify(json)}`).toContain(res.status());
  return json.data;
}

export async function adminToken(request: APIRequestContext): Promise<string> {
  const data = await api(request, 'POST', '/api/auth/login', undefined, {
    email: ADMIN_EMAIL,
    password: ADMIN_PASSWORD,
  });
  return data.token;
}

/** A workspace with a user and `n` products whose videos were started (they stay `generating`). */
export async function startVideos(request: APIRequestContext, n: number): Promise<string[]> {
  return (await startShop(request, n)).ids;
}

/**
 * As `startVideos`, with the workspace's id and name; with `videos`, at least that many videos
 * (one bulk request over the `n` products after another, the quota raised to fit).
 */
export async function startShop(
  request: APIRequestContext,
  n: number,
  videos = n,
): Promise<{ ids: string[]; workspaceId: string; workspaceName: string }> {
  const admin = await adminToken(request);
  const workspaceName = `E2E ${unique()}`;
  const ws = await api(request, 'POST', '/api/workspaces', admin, {
    name: workspaceName,
    videoLimit: Math.max(100, videos + n),
  });
  const email = `shop-${unique()}@e2e.test`;
  await api(request, 'POST', '/api/users', admin, {
    email,
    password: 'shop-password',
    role: 'USER',
    workspaceId: ws._id,
  });
  const user = (await api(request, 'POST', '/api/auth/login', undefined, { email, password: 'shop-password' })).token;
  const products: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = await api(request, 'POST', '/api/products', user, {
      title: `Product ${i}`,
      sku: `SKU-${unique()}`,
      imgUrls: ['https://img.e2e.test/1.jpg'],
    });
    products.push(p._id);
  }
  const ids: string[] = [];
  while (ids.length < videos) {
    const started = await api(request, 'POST', '/api/videos/bulk-generate', user, {
      productIds: products,
      templateId: 'template_001',
      templateName: 'Product Showcase',
      aspect_ratio: '9:16',
    });
    ids.push(...started.videoIds);
  }
  return { ids, workspaceId: ws._id, workspaceName };
}

/** The secret the server under test shares with RCK (end2end/run.sh sets both). */
const WEBHOOK_SECRET = process.env.E2E_WEBHOOK_SECRET ?? '';

/**
 * Calls back as RCK does, signed per Standard Webhooks (webhook-id, webhook-timestamp,
 * webhook-signature: v1,base64 HMAC-SHA256 of "id.timestamp.body"): the tests do not see the
 * per-batch tokens RCK was given, and the server accepts a valid signature in their place.
 */
export async function callback(request: APIRequestContext, kind: 'success' | 'failure', body: unknown, status = 200) {
  const payload = JSON.stringify(body);
  const res = await request.post(`/internal/videos/${kind}`, {
    data: payload,
    headers: signedHeaders(`msg_e2e_${unique()}`, payload),
  });
  expect(res.status(), JSON.stringify(await res.json())).toBe(status);
}

/** The headers of a JSON callback with delivery id `id`, signed with the shared secret. */
export function signedHeaders(id: string, payload: string): Record<string, string> {
  const ts = Math.floor(Date.now() / 1000).toString();
  const key = Buffer.from(WEBHOOK_SECRET.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${ts}.${payload}`).digest('base64');
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': ts,
    'webhook-signature': `v1,${signature}`,
  };
}

/** Signs in through the login form and waits until the page is hydrated. */
export async function signIn(page: Page, next = '/') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(ADMIN_EMAIL);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByTestId('login-submit').click();
  await expect(page).toHaveURL(new RegExp(`${next.replace(/[?]/g, '\\?')}$`));
  await hydrated(page);
}

export async function hydrated(page: Page) {
  await expect(page.getByTestId('hydrated')).toHaveAttribute('data-state', 'browser', { timeout: 30_000 });
}

/** Waits until the page's live feed (SSE) is connected. */
export async function liveConnected(page: Page) {
  await expect(page.locator('html')).toHaveAttribute('data-live', 'connected', { timeout: 15_000 });
}

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core in the page (evaluated through the DevTools protocol, so the page's CSP allows it)
 * and fails on any serious or critical violation; the whole report is attached to the test.
 */
export async function checkA11y(page: Page, info: TestInfo, name: string) {
  await page.evaluate(AXE_SOURCE);
  const results: any = await page.evaluate(() =>
    (window as any).axe.run(document, { resultTypes: ['violations'] }),
  );
  await info.attach(`axe-${name}.json`, { body: JSON.stringify(results.violations, null, 2), contentType: 'application/json' });
  const bad = results.violations
    .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
    .map((v: any) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n: any) => n.target.join(' ')).slice(0, 3).join(', ')})`);
  expect(bad, `accessibility of ${name}`).toEqual([]);
}

/** A full-page screenshot kept with the test's artifacts. */
export async function shot(page: Page, info: TestInfo, name: string) {
  await page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });
}
