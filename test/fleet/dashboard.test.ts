/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core shows a
 * registered agent (a CLI process with fake-nvidia-smi GPUs) and its models, a GPU chart gets
 * points from the live stream, and a cordon click changes the node's state in the page and at
 * the agent. Screenshot: test-output/dashboard.png (TEST_OUTPUT_DIR overrides the folder).
 * Skipped with the reason when chromium is absent (scripts/test-deps.sh installs it).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { createLogger } from '../../src/util/logger.js';
import { makeRepository } from '../helpers/agent.js';
import { fp32, get, post, spawnAgent, waitFor, type AgentProcess } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found (Debian package chromium; scripts/test-deps.sh installs it)`;
if (missing) console.warn(`skipping the dashboard browser test: ${missing}`);
const OUT = process.env.TEST_OUTPUT_DIR ?? path.resolve(import.meta.dirname, '../../test-output');
const FAKE_SMI = path.resolve(import.meta.dirname, '../fixtures/nvidia-smi/fake-nvidia-smi');
const ADMIN = 'dash-admin-token';

let coordinator: RunningCoordinator;
let agent: AgentProcess;
let nodeId: string;
let browser: BrowserContext | undefined;

describe.skipIf(missing !== undefined)('dashboard in chromium', () => {
  beforeAll(async () => {
    coordinator = await startCoordinator({
      port: 0, token: ADMIN, logger: createLogger('silent'), heartbeatIntervalMs: 200, dashboardIntervalMs: 200,
      gateway: { clientTokens: { web: 'web-client-token' } },
    });
    agent = await spawnAgent(await makeRepository(), coordinator.agentsUrl, ADMIN, [
      '--load-models', 'identity_fp32,add_sub', '--nvidia-smi-path', FAKE_SMI, '--telemetry-interval-ms', '200', '--labels', 'zone=lab,price_per_hour=2.49',
    ]);
    nodeId = await waitFor(() => coordinator.nodes().find((n) => n.models.some((m) => m.state === 'READY'))?.nodeId, 'the agent', 30_000);
    browser = await chromium.launchPersistentContext(mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    await coordinator?.close();
  });

  it('shows the node and its models, charts GPU samples live, and cordons from a button', async () => {
    for (let i = 0; i < 5; i++) await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32, { authorization: 'Bearer web-client-token' });
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(coordinator.url);
    await page.fill('#token', ADMIN);
    await page.click('#connect');
    const node = page.locator(`#node-${nodeId}`);
    await node.waitFor({ timeout: 15_000 });
    expect(await node.locator('.state').textContent()).toBe('Ready');
    expect(await node.locator('tr[data-model="identity_fp32"] .model-state').textContent()).toBe('READY');
    expect(await node.locator('tr[data-model="add_sub"] .model-state').textContent()).toBe('READY');
    expect(await node.textContent()).toContain('zone=lab');

    // The chart of GPU 0 gets points from heartbeats arriving over the live stream.
    await page.waitForFunction((id) => ((globalThis as any).__fleet.charts.get(`${id}/0`)?.data[0].length ?? 0) >= 3, nodeId, { timeout: 15_000 });
    expect(await node.locator('.gpu-chart canvas').count()).toBeGreaterThan(0);

    await node.locator('button[data-cmd="cordon"]').click();
    await node.locator('[data-node-state="cordoned"]').waitFor({ timeout: 15_000 });
    expect((await get(`${agent.url}/v2/health/ready`)).json).toMatchObject({ ready: false, state: 'cordoned' });
    await page.locator('#audit tbody tr', { hasText: 'cordon' }).first().waitFor({ timeout: 10_000 });
    expect(await page.locator('#toast').textContent()).toBe('cordon: ok');

    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 60_000);
});
