import { test, expect } from '@playwright/test';
import http from 'node:http';
import { adminToken, api, callback, hydrated, signIn, startVideos } from './support';

test('notifications: settings, a test send, the delivery log and a redelivery', async ({ page, request }, info) => {
  // A receiver on loopback standing in for Slack (the server under test allows private URLs).
  const got: string[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push(body);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const port = (receiver.address() as { port: number }).port;
  try {
    const ids = await startVideos(request, 1);
    const admin = await adminToken(request);
    const ws = (await api(request, 'GET', `/api/videos/${ids[0]}`, admin)).workspaceId;

    await signIn(page, `/notifications?workspaceId=${ws}`);
    await expect(page.getByTestId('webhook-secret')).toHaveText(/^whsec_/);
    // Refused with the field named; then saved.
    await page.getByTestId('slack-url').fill('ftp://hooks.example/x');
    await page.getByTestId('save-settings').click();
    await expect(page.getByTestId('settings-error')).toContainText('slackWebhookUrl must be an https URL');
    await page.getByTestId('slack-url').fill(`http://127.0.0.1:${port}/slack`);
    await page.getByTestId('save-settings').click();
    await expect(page.getByTestId('settings-saved')).toBeVisible();
    await expect(page.getByTestId('slack-url')).toHaveValue(`http://127.0.0.1:${port}/slack`);

    // Send test: each channel's result.
    await page.getByTestId('send-test').click();
    await expect(page.getByTestId('test-result')).toContainText('slack → 127.0.0.1: sent');
    expect(got.length).toBe(1);
    await page.screenshot({ path: info.outputPath('notification-settings.png'), fullPage: true });

    // A finished video reaches Slack through the outbox, and shows in the log.
    await callback(request, 'success', { videoId: ids[0], video_url: 'https://cdn.e2e.test/v.mp4' });
    await expect.poll(() => got.length, { timeout: 15_000 }).toBe(2);
    expect(got[1]).toContain('Video ready: Product 0');
    await page.goto(`/notifications?workspaceId=${ws}&status=delivered`);
    await hydrated(page);
    await expect(page.getByTestId('notification-row')).toHaveCount(1);
    await page.screenshot({ path: info.outputPath('notification-log.png'), fullPage: true });

    // Redeliver: sent again.
    await page.getByTestId('redeliver').click();
    await expect.poll(() => got.length, { timeout: 15_000 }).toBe(3);
  } finally {
    receiver.close();
  }
});
