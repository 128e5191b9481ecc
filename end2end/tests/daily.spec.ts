import { test, expect, type Page } from '@playwright/test';
import { callback, checkA11y, hydrated, liveConnected, shot, signIn, startShop } from './support';

const row = (page: Page, id: string) => page.locator(`tr[data-video-id="${id}"]`);

test('tables show names, thumbnails, relative times and errors', async ({ page, request }, info) => {
  const shop = await startShop(request, 2);
  await callback(request, 'failure', { videoId: shop.ids[1], error: 'Template not found: template_001' });
  await signIn(page, `/videos?workspaceId=${shop.workspaceId}`);
  const r0 = row(page, shop.ids[0]);
  await expect(r0.locator('.product-title')).toHaveText(/^Product \d$/);
  await expect(r0.locator('img.thumb')).toHaveAttribute('src', 'https://img.e2e.test/1.jpg');
  await expect(r0).toContainText(shop.workspaceName);
  // Ids only as short chips, whole in the title; times relative, exact in the title and on focus.
  const chip = r0.locator('.chip code');
  await expect(chip).toHaveAttribute('title', shop.ids[0]);
  await expect(chip).toHaveText(`…${shop.ids[0].slice(-6)}`);
  const time = r0.locator('time.ago');
  await expect(time).toHaveText(/just now|min ago/);
  await expect(time).toHaveAttribute('title', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await time.focus();
  await expect(time).toBeFocused();
  await expect(row(page, shop.ids[1]).locator('.error-text')).toHaveText('Template not found: template_001');
  await shot(page, info, 'videos-names');
  await checkA11y(page, info, 'videos');

  await page.goto(`/events?videoId=${shop.ids[1]}`);
  await hydrated(page);
  const ev = page.getByTestId('event-row').first();
  await expect(ev.locator('.product-title')).toHaveText(/^Product \d$/);
  await expect(ev).toContainText(shop.workspaceName);
  await expect(ev.locator('time.ago')).toHaveText(/just now|min ago/);
  await shot(page, info, 'events-names');
  await checkA11y(page, info, 'events');
});

test('a page per video: times, events in order, live updates, actions', async ({ page, request }, info) => {
  const shop = await startShop(request, 1);
  const id = shop.ids[0];
  await signIn(page, `/videos?videoId=${id}`);
  await row(page, id).locator('a.product').click();
  await expect(page).toHaveURL(new RegExp(`/videos/${id}$`));
  await hydrated(page);
  await liveConnected(page);
  const detail = page.getByTestId('video-detail');
  await expect(detail.locator('.badge').first()).toHaveText('generating');
  await expect(page.getByTestId('detail-job')).toContainText('job');
  await expect(page.getByTestId('no-events')).toBeVisible();
  // A failure, then (after a retry) a success arrive while the page is open.
  await callback(request, 'failure', { videoId: id, error: 'Rendering timed out' });
  await expect(detail.locator('.badge').first()).toHaveText('failed');
  await expect(page.getByTestId('detail-error')).toHaveText('Rendering timed out');
  await expect(page.getByTestId('video-event')).toHaveCount(1);
  await page.getByTestId('detail-actions').getByTestId('retry').click();
  await expect(detail.locator('.badge').first()).toHaveText('generating');
  await expect(detail).toContainText('1 (');
  await callback(request, 'success', { videoId: id, video_url: 'https://cdn.e2e/v.mp4', youtubeVideoId: 'dQw4w9WgXcQ' });
  await expect(detail.locator('.badge').first()).toHaveText('completed');
  await expect(page.getByTestId('video-link')).toHaveAttribute('href', 'https://cdn.e2e/v.mp4');
  await expect(page.getByTestId('youtube-link')).toHaveAttribute('href', /youtube\.com\/watch\?v=dQw4w9WgXcQ/);
  const events = page.getByTestId('video-event');
  await expect(events).toHaveCount(2);
  await expect(events.nth(0)).toContainText('/videos/failure');
  await expect(events.nth(1)).toContainText('/videos/success');
  await shot(page, info, 'video-page');
  await checkA11y(page, info, 'video-page');
  // The event's page links back here.
  await events.nth(1).getByRole('link', { name: 'Payload' }).click();
  await expect(page.getByTestId('event-video-link')).toHaveAttribute('href', `/videos/${id}`);
  await checkA11y(page, info, 'event-page');
});

test('bulk actions: select, confirm with a count, see the result', async ({ page, request }, info) => {
  const shop = await startShop(request, 3);
  for (const id of shop.ids.slice(0, 2)) {
    await callback(request, 'failure', { videoId: id, error: 'Upstream error' });
  }
  await signIn(page, `/videos?workspaceId=${shop.workspaceId}`);
  await expect(page.getByTestId('video-row')).toHaveCount(3);
  // Keyboard only: the page's checkbox, then the action.
  await page.getByTestId('select-page').focus();
  await page.keyboard.press('Space');
  await expect(page.getByTestId('bulk-selected')).toHaveText('3 selected');
  await page.getByTestId('bulk-retry').focus();
  await page.keyboard.press('Enter');
  const confirm = page.getByTestId('bulk-confirm');
  await expect(confirm).toContainText('Retry 2 failed videos?');
  await shot(page, info, 'bulk-confirm');
  await checkA11y(page, info, 'bulk-confirm');
  await page.getByTestId('bulk-confirm-yes').click();
  await expect(page.getByTestId('bulk-result')).toContainText('Retry: 2 done, 0 refused, 1 skipped.');
  for (const id of shop.ids) {
    await expect(row(page, id).locator('.badge').first()).toHaveText('generating');
  }
  await shot(page, info, 'bulk-result');
  // One row, mark failed; a retry of a video that is not failed says there is nothing to do.
  await row(page, shop.ids[2]).getByTestId('select-video').check();
  await page.getByTestId('bulk-retry').click();
  await expect(page.getByTestId('bulk-nothing')).toBeVisible();
  await page.getByTestId('bulk-mark-failed').click();
  await expect(confirm).toContainText('Mark 1 video failed?');
  await page.getByTestId('bulk-confirm-yes').click();
  await expect(page.getByTestId('bulk-result')).toContainText('Mark failed: 1 done, 0 refused, 0 skipped.');
  await expect(row(page, shop.ids[2]).locator('.badge').first()).toHaveText('failed');
});

test('workspaces: quota bars, counts, and a validated limit change', async ({ page, request }, info) => {
  const shop = await startShop(request, 2);
  await callback(request, 'success', { videoId: shop.ids[0] });
  await signIn(page, '/workspaces');
  const card = page.locator(`[data-workspace-id="${shop.workspaceId}"]`);
  // The workspaces come a page at a time, by name: page on (the pager's links) to the shop's card.
  for (let n = 2; n <= 50 && (await card.count()) === 0; n++) {
    await page.getByTestId('next-page').click();
    await expect(page.getByTestId('page-status')).toContainText(`Page ${n} of`);
  }
  await expect(card.getByTestId('quota-text')).toHaveText('2 of 100 videos used');
  await expect(card.locator('meter')).toHaveAttribute('value', '2');
  await expect(card.locator('.counts')).toContainText('Completed');
  await expect(card).toContainText(/Last activity: (just now|\d+ min ago)/);
  await shot(page, info, 'workspaces');
  await checkA11y(page, info, 'workspaces');
  await card.getByTestId('limit-input').fill('1');
  await card.getByTestId('limit-save').click();
  await expect(page.getByTestId('limit-result')).toContainText(`${shop.workspaceName}: the limit is now 1 videos.`);
  await expect(card.getByTestId('quota-text')).toHaveText('2 of 1 videos used');
  // The browser refuses what the server would (a negative limit) before it is sent.
  await card.getByTestId('limit-input').fill('-5');
  await card.getByTestId('limit-save').click();
  expect(await card.getByTestId('limit-input').evaluate((el: HTMLInputElement) => el.validity.valid)).toBe(false);
  await expect(card.getByTestId('quota-text')).toHaveText('2 of 1 videos used');
});

test('the overview says why videos fail and updates live', async ({ page, request }, info) => {
  const shop = await startShop(request, 4);
  const reason = `Rendering timed out ${Date.now()}`;
  await callback(request, 'failure', { videoId: shop.ids[0], error: reason });
  await callback(request, 'failure', { videoId: shop.ids[1], error: reason });
  await callback(request, 'success', { videoId: shop.ids[2] });
  await signIn(page, '/?range=24h');
  await liveConnected(page);
  const reasons = page.getByTestId('failure-reason');
  const mine = reasons.filter({ hasText: reason });
  await expect(mine).toContainText('2');
  const rate = page.getByTestId('workspace-rate').filter({ hasText: shop.workspaceName });
  await expect(rate).toContainText('33.3 %');
  await shot(page, info, 'overview-failures');
  await checkA11y(page, info, 'overview');
  // Live: a new failure moves the counters and the reasons without a reload.
  await page.evaluate(() => ((window as any).__noReload = true));
  const failedBefore = Number(await page.getByTestId('count-failed').textContent());
  await callback(request, 'failure', { videoId: shop.ids[3], error: reason });
  await expect(page.getByTestId('count-failed')).toHaveText(String(failedBefore + 1));
  await expect(mine).toContainText('3');
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  // The reason links to its failed videos.
  await mine.getByRole('link').click();
  await expect(page).toHaveURL(/status=failed/);
  await hydrated(page);
  for (const id of [shop.ids[0], shop.ids[1], shop.ids[3]]) {
    await expect(row(page, id)).toBeVisible();
  }
  await expect(page.getByTestId('error-filter')).toHaveValue(reason);
});

test('comfort: / focuses search, dark theme, 360 px, every page passes axe', async ({ page, request }, info) => {
  const shop = await startShop(request, 1);
  await signIn(page, '/videos');
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('/');
  await expect(page.getByTestId('video-search')).toBeFocused();
  await page.goto('/events');
  await hydrated(page);
  await page.keyboard.press('/');
  await expect(page.locator('input[name="videoId"]')).toBeFocused();

  const pages = ['/', '/videos', `/videos/${shop.ids[0]}`, '/events', '/workspaces', '/notifications'];
  await page.emulateMedia({ colorScheme: 'dark' });
  for (const path of pages) {
    await page.goto(path);
    await hydrated(page);
    await checkA11y(page, info, `dark${path.replace(/\//g, '_')}`);
  }
  await shot(page, info, 'dark-notifications');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 360, height: 740 });
  for (const path of pages) {
    await page.goto(path);
    await hydrated(page);
    // What sticks out past the right edge, if anything (outside scrolling containers).
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((el) => !el.closest('.table-wrap, .nav, .chart-scroll, pre'))
        .slice(0, 5)
        .map((el) => `${el.tagName.toLowerCase()}.${el.className}`),
    );
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${path} fits 360 px: ${wide.join(', ')}`).toBeLessThanOrEqual(0);
    await shot(page, info, `narrow${path.replace(/\//g, '_')}`);
  }
  await page.context().clearCookies();
  await page.goto('/login');
  await checkA11y(page, info, 'login');
  await page.goto('/api/docs');
  await checkA11y(page, info, 'api-docs');
});
