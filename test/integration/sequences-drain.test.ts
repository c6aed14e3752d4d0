/**
 * Draining with live sequences, with real onnxruntime on the generated sequence_accumulator
 * (OUTPUT = running sum since START): chunks of several sequences are queued (held by a long
 * max_queue_delay) when the drain begins; every one of them finishes with its running sum,
 * new requests get 503 while draining, then every live sequence is ended and its next request
 * is told why. In process (agent.drain(), then uncordon) and through SIGTERM on the real CLI
 * (exit status 0).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSequenceModels } from '../../scripts/sequence-models.mjs';
import { getJson, postJson, startAgent } from '../helpers/agent.js';
import { spawnCliAgent } from '../helpers/cli-agent.js';

const M = 'sequence_accumulator';
const ACTIVE = [11, 12, 13, 14];
const IDLE = 99; // started, never sent more: no batch ever holds every live sequence, so chunks wait
const CHUNKS = [[5, 7, 1], [2, 4, 8], [-3, 6, 9], [100, -50, 25]] as const;

let repo: string;
beforeAll(async () => {
  repo = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-seq-drain-'));
  // Chunks wait up to 3 s for a batch: they are certainly queued when the drain begins.
  await generateSequenceModels(repo, { idleUs: 600_000_000, maxCandidates: 8, delayUs: 3_000_000 });
  // and no preferred size short of 8 lets a batch go early
  const config = path.join(repo, M, 'config.pbtxt');
  writeFileSync(config, readFileSync(config, 'utf8').replace('preferred_batch_size: [ 2 ]', 'preferred_batch_size: [ 8 ]'));
});

const chunk = (url: string, id: number, v: number, parameters: Record<string, unknown> = {}) =>
  postJson(`${url}/v2/models/${M}/infer`, { inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1], data: [v] }], parameters: { sequence_id: id, ...parameters } });

async function waitFor(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const queueDepth = async (url: string) => (await getJson(`${url}/v2/models/${M}/stats`)).json.model_stats[0].queue_depth as number;

/** Start the sequences (start value 10 × id), then queue every chunk in per-sequence order; the replies, unawaited. */
async function startAndQueue(url: string) {
  const starts = await Promise.all([...ACTIVE, IDLE].map((id) => chunk(url, id, 10 * id, { sequence_start: true })));
  for (const r of starts) expect(r.status).toBe(200);
  const replies: Promise<{ status: number; json: any }>[][] = ACTIVE.map(() => []);
  for (let k = 0; k < 3; k++) {
    // round k of every sequence, admitted before round k+1 is sent: order within a sequence holds
    ACTIVE.forEach((id, s) => replies[s]!.push(chunk(url, id, CHUNKS[s]![k]!)));
    await waitFor(async () => (await queueDepth(url)) === 4 * (k + 1), `round ${k} to queue`);
  }
  return replies;
}

async function expectRunningSums(replies: Promise<{ status: number; json: any }>[][]) {
  for (const [s, id] of ACTIVE.entries()) {
    let sum = 10 * id;
    for (const [k, p] of replies[s]!.entries()) {
      const r = await p;
      expect(r.status).toBe(200);
      sum += CHUNKS[s]![k]!;
      expect(r.json.outputs.find((o: any) => o.name === 'OUTPUT').data).toEqual([sum]);
      expect(r.json.outputs.find((o: any) => o.name === 'CORRID_OUT').data).toEqual([id]);
    }
  }
}

describe('draining with live sequences', () => {
  it('agent.drain(): queued chunks of every sequence finish with their sums, new ones get 503, then each sequence is ended with the reason', async () => {
    const { agent, url } = await startAgent(repo, { loadModels: M });
    try {
      const replies = await startAndQueue(url);
      const draining = agent.drain();
      const next = await chunk(url, ACTIVE[0]!, 1);
      expect(next.status).toBe(503);
      expect(next.headers.get('retry-after')).toBe('5');
      expect(next.json.error).toMatch(/the node is not taking new requests \(draining\)/);
      const fresh = await chunk(url, 500, 1, { sequence_start: true });
      expect(fresh.status).toBe(503);
      await expectRunningSums(replies);
      await draining;
      const stats = (await getJson(`${url}/v2/models/${M}/stats`)).json.model_stats[0].sequence_stats;
      expect(stats.live_sequences).toBe(0);
      expect(stats.sequence_starts).toBe(5);
      expect(stats.sequence_ends).toBe(5);
      // back in service: the old sequences are gone, with the reason; a new start works
      agent.uncordon();
      for (const id of [...ACTIVE, IDLE]) {
        const r = await chunk(url, id, 1);
        expect(r.status).toBe(400);
        expect(r.json.error).toBe(`sequence ${id} of model '${M}' is ended (the node drained: draining); send its first request with sequence_start: true`);
      }
      const again = await chunk(url, ACTIVE[0]!, 4, { sequence_start: true, sequence_end: true });
      expect(again.status).toBe(200);
      expect(again.json.outputs.find((o: any) => o.name === 'OUTPUT').data).toEqual([4]);
    } finally {
      await agent.close();
    }
  });

  it('SIGTERM on the CLI with live sequences: queued chunks finish, new requests get 503, the sequences end, exit status 0', async () => {
    const { child, url, out, exited } = await spawnCliAgent(['--models', repo, '--port', '0', '--providers', 'cpu', '--load-models', M]);
    try {
      await waitFor(async () => (await getJson(`${url}/v2/models/${M}/ready`)).status === 200, 'the model');
      const replies = await startAndQueue(url);
      child.kill('SIGTERM');
      await waitFor(async () => (await getJson(`${url}/v2/health/ready`)).json.state === 'draining', 'the drain to begin');
      const next = await chunk(url, ACTIVE[1]!, 1);
      expect(next.status).toBe(503);
      expect(next.json.error).toMatch(/the node is not taking new requests \(shutting down\)/);
      await expectRunningSums(replies);
      expect(await exited).toBe(0);
      expect(out()).toMatch(/"sequences":5,"msg":"drain ended the live sequences"/);
      expect(out()).toMatch(/"msg":"stopped"/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
