import { test, expect } from '@playwright/test';

test('GET /api/health answers ok in the JSON envelope', async ({ request }) => {
  const res = await request.get('/api/health');
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toContain('application/json');
  const body = await res.json();
  expect(body.success).toBe(true);
  expect(body.data?.status).toBe('ok');
});
