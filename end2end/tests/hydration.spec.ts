import { test, expect, type ConsoleMessage } from '@playwright/test';

// The landing page is rendered on the server, then hydrated from the WASM bundle. These tests check both
// halves: the raw HTML (what a browser gets before any script runs) and the page once WASM has taken over.

test('the server renders the page before any script runs', async ({ request }) => {
  const res = await request.get('/');
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toContain('text/html');

  const html = await res.text();
  // A page heading with the product's name, rendered on the server.
  expect(html).toMatch(/<h1[^>]*>[^<]*Racky[^<]*<\/h1>/i);
  // The hydration marker in its server-rendered state.
  expect(html).toContain('data-testid="hydration"');
  expect(html).toContain('server-rendered');
  expect(html).not.toContain('>hydrated<');
  // The scripts that hydrate it and the stylesheet.
  expect(html).toContain('/pkg/racky-videos.js');
  expect(html).toContain('/pkg/racky-videos.css');
});

test('the bundle assets are served', async ({ request }) => {
  for (const [path, type] of [
    ['/pkg/racky-videos.js', 'javascript'],
    ['/pkg/racky-videos.wasm', 'application/wasm'],
    ['/pkg/racky-videos.css', 'text/css'],
  ]) {
    const res = await request.get(path);
    expect(res.status(), path).toBe(200);
    expect(res.headers()['content-type'], path).toContain(type);
  }
});

test('the page hydrates from WASM and becomes interactive', async ({ page }, testInfo) => {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`);
  });

  await page.goto('/');
  await expect(page.locator('h1')).toContainText('Racky');

  const marker = page.getByTestId('hydration');
  await expect(marker).toHaveText('hydrated', { timeout: 30_000 });

  // The endpoint list is only shown once the (hydrated) button is clicked.
  const endpoints = page.getByTestId('endpoints');
  await expect(endpoints).toBeHidden();
  await page.getByTestId('toggle-details').click();
  await expect(endpoints).toBeVisible();
  await expect(endpoints).toContainText('POST /internal/videos/success');

  await page.screenshot({ path: testInfo.outputPath('home-hydrated.png'), fullPage: true });

  // Clicking again hides it: the handler really runs in the browser.
  await page.getByTestId('toggle-details').click();
  await expect(endpoints).toBeHidden();

  expect(problems, problems.join('\n')).toEqual([]);
});

test('the page is usable on a narrow phone screen', async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto('/');
  await expect(page.getByTestId('hydration')).toHaveText('hydrated', { timeout: 30_000 });
  await page.getByTestId('toggle-details').click();
  await expect(page.getByTestId('endpoints')).toBeVisible();
  // Nothing overflows sideways at 360px.
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: testInfo.outputPath('home-360px.png'), fullPage: true });
});
