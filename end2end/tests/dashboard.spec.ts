import { test, expect } from '@playwright/test';
import { adminToken, api, callback, hydrated, liveConnected, signIn, startVideos } from './support';

test('a signed-out visit goes to the login page, and a bad password says so', async ({ page }, info) => {
  await page.goto('/videos?status=failed');
  await expect(page).toHaveURL(/\/login\?next=/);
  await expect(page.getByRole('heading', { name: 'Racky videos' })).toBeVisible();
  await page.getByLabel('Email').fill('nobody@racky.test');
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-error')).toBeVisible();
  await page.screenshot({ path: info.outputPath('login.png'), fullPage: true });
});

test('the server renders the page, then the WASM hydrates it', async ({ page, request, browser }) => {
  const res = await request.get('/login');
  const html = await res.text();
  expect(html).toMatch(/\/pkg\/racky-videos(\.[\w-]+)?\.js/);
  expect(html).toContain('Sign in');
  // The site's files: hashed names are kept a year; what goes over the wire for the WASM.
  const wasm = html.match(/\/pkg\/racky-videos[\w.-]*\.wasm/)?.[0] ?? '/pkg/racky-videos.wasm';
  const asset = await request.get(wasm, { headers: { 'accept-encoding': 'br, gzip' } });
  expect(asset.ok()).toBeTruthy();
  const cache = asset.headers()['cache-control'] ?? '';
  expect(cache === 'no-cache' || cache.includes('immutable')).toBeTruthy();
  const body = await asset.body();
  console.log(`wasm over the wire: ${(body.length / 1024).toFixed(0)} KiB (${asset.headers()['content-encoding'] ?? 'identity'}), cache-control: ${cache}`);
  // First load to hydrated, in a fresh browser context (nothing cached).
  const cold = await browser.newContext({ baseURL: process.env.BASE_URL ?? 'http://127.0.0.1:3000' });
  const fresh = await cold.newPage();
  const started = Date.now();
  await signIn(fresh, '/');
  console.log(`first load (sign-in form to a hydrated overview, cold cache): ${Date.now() - started} ms`);
  await cold.close();
  await signIn(page, '/');
  // Hover read-outs only work once hydrated.
  await startVideos(request, 1);
  await page.reload();
  await hydrated(page);
  await page.locator('.chart .bucket').last().hover();
  await expect(page.getByTestId('chart-readout')).toContainText('success');
});

test('the overview chart shows the same totals as the stats API', async ({ page, request }, info) => {
  const ids = await startVideos(request, 3);
  await callback(request, 'success', { videoId: ids[0], video_url: 'https://cdn.e2e/0.mp4' });
  await callback(request, 'success', { videoId: ids[1] });
  await callback(request, 'failure', { videoId: ids[2], error: 'Processing timeout' });
  await signIn(page, '/?range=7d');
  const card = page.getByTestId('chart-card');
  await expect(card).toHaveAttribute('data-bucket', 'day');
  const from = await card.getAttribute('data-from');
  const to = await card.getAttribute('data-to');
  const stats = await api(
    request,
    'GET',
    `/api/webhook-events/stats?from=${from}&to=${to}&bucket=day`,
    await adminToken(request),
  );
  expect(stats.totals.success).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId('chart-total-success')).toHaveText(String(stats.totals.success));
  await expect(page.getByTestId('chart-total-failure')).toHaveText(String(stats.totals.failure));
  await page.screenshot({ path: info.outputPath('overview.png'), fullPage: true });
  // The range selector is a set of links.
  await page.getByTestId('range-24h').click();
  await expect(page).toHaveURL(/range=24h/);
  await expect(card).toHaveAttribute('data-bucket', 'hour');
});

test('a video row changes status live, without a reload', async ({ page, request }, info) => {
  const ids = await startVideos(request, 4);
  await signIn(page, '/videos');
  await liveConnected(page);
  const row = (id: string) => page.locator(`tr[data-video-id="${id}"]`);
  await expect(row(ids[0]).locator('.badge').first()).toHaveText('generating');
  // Mark the page, so a reload would be noticed.
  await page.evaluate(() => ((window as any).__noReload = true));

  await callback(request, 'success', { videoId: ids[0], video_url: 'https://cdn.e2e/live.mp4' });
  await expect(row(ids[0]).locator('.badge').first()).toHaveText('completed', { timeout: 1_000 });
  await callback(request, 'failure', { videoId: ids[1], error: 'insufficient image quality' });
  await expect(row(ids[1]).locator('.badge').first()).toHaveText('failed', { timeout: 1_000 });
  await expect(row(ids[1])).toContainText('insufficient image quality');
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  await page.screenshot({ path: info.outputPath('videos-live.png'), fullPage: true });

  // The superadmin's actions: mark a stuck video failed, then retry it.
  await row(ids[2]).getByTestId('mark-failed').click();
  await expect(row(ids[2]).locator('.badge').first()).toHaveText('failed');
  await row(ids[2]).getByTestId('retry').click();
  await expect(row(ids[2]).locator('.badge').first()).toHaveText('generating');

  // Filters live in the URL.
  await page.goto(`/videos?videoId=${ids[0]}`);
  await expect(page.getByTestId('video-row')).toHaveCount(1);

  // The page follows the videos it shows; a change to another is counted, not shown.
  await liveConnected(page);
  await page.evaluate(() => ((window as any).__noReload = true));
  await callback(request, 'success', { videoId: ids[2], video_url: 'https://cdn.e2e/other.mp4' });
  await expect(page.getByTestId('new-videos')).toHaveText(/1 new video/);
  await expect(page.getByTestId('video-row')).toHaveCount(1);
  // Moving to other rows in the page (no reload), it follows those.
  await page.getByRole('link', { name: 'Clear', exact: true }).click();
  await expect(row(ids[3]).locator('.badge').first()).toHaveText('generating');
  await callback(request, 'failure', { videoId: ids[3], error: 'no product images' });
  await expect(row(ids[3]).locator('.badge').first()).toHaveText('failed', { timeout: 1_000 });
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test('webhook events: pages, new-event notice, and the detail view', async ({ page, request }, info) => {
  const ids = await startVideos(request, 1);
  for (let i = 0; i < 25; i++) {
    await callback(request, 'failure', { videoId: `not-an-id-${i}` }, 400);
  }
  await callback(request, 'success', { videoId: ids[0], youtubeVideoId: 'dQw4w9WgXcQ' });
  await signIn(page, '/events?limit=20');
  await expect(page.getByTestId('event-row')).toHaveCount(20);
  await expect(page.getByTestId('page-status')).toContainText('Page 1 of');
  await page.screenshot({ path: info.outputPath('events.png'), fullPage: true });

  await page.getByTestId('next-page').click();
  await expect(page).toHaveURL(/page=2/);
  await expect(page.getByTestId('page-status')).toContainText('Page 2 of');
  await page.goBack();
  await expect(page).not.toHaveURL(/page=2/);
  await expect(page.getByTestId('page-status')).toContainText('Page 1 of');

  // New events while reading: a notice, not a jump.
  await liveConnected(page);
  await callback(request, 'failure', { videoId: 'yet-another' }, 400);
  await expect(page.getByTestId('new-events')).toHaveText(/1 new event/);

  // Filter by video, open its event, follow the link to the video.
  await page.goto(`/events?videoId=${ids[0]}`);
  await expect(page.getByTestId('event-row')).toHaveCount(1);
  await page.getByTestId('event-link').first().click();
  await expect(page.getByTestId('event-outcome')).toHaveText('Video status updated successfully');
  await expect(page.getByTestId('event-payload')).toContainText('"youtubeVideoId": "dQw4w9WgXcQ"');
  await page.screenshot({ path: info.outputPath('event-detail.png'), fullPage: true });

  // Replay it: the same answer (the video is already completed), recorded as an event of its own.
  const detail = page.url();
  await hydrated(page);
  await page.getByTestId('replay').click();
  await expect(page.getByTestId('replay-result')).toContainText('Video status updated successfully');
  await page.getByTestId('replay-event-link').click();
  await expect(page.getByTestId('event-outcome')).toContainText('(replay of ');
  await page.goto(detail);
  await page.getByTestId('event-video-link').click();
  await expect(page).toHaveURL(new RegExp(`/videos/${ids[0]}$`));
  await expect(page.getByTestId('video-detail')).toHaveAttribute('data-video-id', ids[0]);
});

test('usable on a narrow screen', async ({ page, request }, info) => {
  await startVideos(request, 1);
  await page.setViewportSize({ width: 360, height: 740 });
  await signIn(page, '/videos');
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: info.outputPath('videos-360px.png'), fullPage: true });
});

test('keyboard: the skip link and the navigation are reachable', async ({ page }) => {
  await signIn(page, '/');
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Videos' })).toBeVisible();
});
