/**
 * Readiness that means it, on the real CLI: a request for a model that is still LOADING right
 * after /v2/health/ready turns true waits for the load and answers (also through the OCR
 * pipeline, whose stages load after the node says ready, and with lazy loading off), and
 * strict readiness turns true only once every startup model is READY.
 */
import { cpSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fetchOcrModels } from '../../scripts/fetch-models.mjs';
import { makeRepository } from '../helpers/agent.js';
import { spawnCliAgent, type CliAgent } from '../helpers/cli-agent.js';
import { renderText } from '../preprocess/helpers.js';

const OCR = 'ocr,text_detection,text_direction,text_recognition';
let repo: string;

beforeAll(async () => {
  repo = await makeRepository();
  await fetchOcrModels(repo, { all: true });
  cpSync(path.resolve(import.meta.dirname, '../../models/text_direction/labels.txt'), path.join(repo, 'text_direction', 'labels.txt'));
}, 120_000);

function serve(args: string[]): Promise<CliAgent> {
  return spawnCliAgent(['--models', repo, '--port', '0', '--providers', 'cpu', '--intra-op-threads', '1', ...args], 30_000);
}

/** Poll fast until the URL answers 200; returns how many polls said not-ready first. */
async function until200(url: string): Promise<number> {
  for (let n = 0; ; n++) {
    const r = await fetch(url).catch(() => undefined);
    if (r?.status === 200) return n;
    await new Promise((res) => setTimeout(res, 2));
  }
}

describe('readiness', () => {
  it('a request for a model still LOADING right after ready waits for the load (OCR pipeline, lazy loading off)', async () => {
    const s = await serve(['--load-models', OCR, '--model-control-mode', 'none']);
    const url = s.url;
    const page = await renderText(['HELLO WORLD 2026']);
    await until200(`${url}/v2/health/ready`);
    const index = (await (await fetch(`${url}/v2/repository/index`, { method: 'POST' })).json()) as { name: string; state?: string }[];
    const loadingAtReady = index.filter((m) => OCR.split(',').includes(m.name) && m.state !== 'READY').map((m) => `${m.name}:${m.state ?? 'not loaded'}`);
    const results = await Promise.all([
      fetch(`${url}/v1/models/ocr/predict`, { method: 'POST', body: page, headers: { 'content-type': 'image/png' } }),
      fetch(`${url}/v1/models/text_recognition/predict`, { method: 'POST', body: await renderText(['HELLO'], { width: 200, height: 60 }), headers: { 'content-type': 'image/png' } }),
    ]);
    const bodies = await Promise.all(results.map((r) => r.json() as Promise<any>));
    console.log(`models not READY when /v2/health/ready first said 200: ${loadingAtReady.join(', ') || 'none'}; answers: ${results.map((r) => r.status).join(', ')}`);
    expect(results.map((r) => r.status), JSON.stringify(bodies)).toEqual([200, 200]);
    expect(bodies[0].text).toMatch(/HELLO WORLD 2026/);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  }, 60_000);

  it('strict readiness is true only once every startup model is READY; a failed one keeps it false with the reason', async () => {
    const s = await serve(['--load-models', `${OCR},add_sub`]);
    const url = s.url;
    await until200(`${url}/v2/health/ready?strict=true`);
    const index = (await (await fetch(`${url}/v2/repository/index`, { method: 'POST' })).json()) as { name: string; state?: string }[];
    for (const name of [...OCR.split(','), 'add_sub']) expect(index.find((m) => m.name === name)?.state, name).toBe('READY');
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);

    const f = await serve(['--load-models', 'add_sub,corrupt', '--strict-readiness']);
    const furl = f.url;
    for (;;) {
      const m = (await (await fetch(`${furl}/v2/models/corrupt/ready`)).json()) as { error?: string };
      if (/UNAVAILABLE/.test(m.error ?? '')) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    await until200(`${furl}/v2/models/add_sub/ready`);
    const r = await fetch(`${furl}/v2/health/ready`);
    expect(r.status).toBe(400);
    expect(((await r.json()) as any).reason).toMatch(/^models not READY yet: corrupt: UNAVAILABLE: /);
    expect((await fetch(`${furl}/v2/health/live`)).status).toBe(200);
    f.child.kill('SIGTERM');
    expect(await f.exited).toBe(0);
  }, 60_000);
});
