/**
 * `gpu-agent doctor --load`: load every model of the repository as the agent would (sessions
 * on the configured providers, warm-up at batch 1 and at max_batch_size), report each, free
 * them. Parsing a config is not enough: a model can parse and still fail to create or to run.
 * And `doctor` on the port of a running agent: is it a gpu-agent?
 */
import { Agent } from './agent.js';
import type { AgentConfig } from './config/schema.js';
import type { Check } from './doctor.js';
import { messageOf } from './errors.js';
import { createLogger } from './util/logger.js';

export async function loadChecks(config: AgentConfig): Promise<Check[]> {
  const agent = new Agent({ ...config, idleUnloadSeconds: 0, preload: [] }, { logger: createLogger('silent') });
  const checks: Check[] = [];
  try {
    const names = (await agent.repository.list()).map((m) => m.name);
    for (const name of names) {
      const started = Date.now();
      try {
        await agent.models.load(name);
        const pipe = agent.models.pipeline(name);
        const served = pipe ? undefined : agent.models.resolve(name);
        checks.push({
          name: `load ${name}`,
          status: 'ok',
          detail: pipe
            ? `pipeline of ${pipe.stageModels.join(' → ')}`
            : `loaded and warmed up on ${served!.provider} in ${Date.now() - started} ms`,
        });
      } catch (err) {
        checks.push({ name: `load ${name}`, status: 'fail', detail: messageOf(err), fix: 'fix the model as the message says (the agent would serve the other models)' });
      }
    }
  } finally {
    await agent.models.close();
  }
  return checks;
}

/** Whatever answers on host:port: a gpu-agent (its /v2 metadata), or something else. */
export async function whoAnswers(host: string, port: number, token: string | undefined): Promise<string | undefined> {
  const h = host.includes(':') ? `[${host}]` : host;
  try {
    const r = await fetch(`http://${h === '0.0.0.0' ? '127.0.0.1' : h}:${port}/v2`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(1500),
    });
    if (r.status === 401) return 'a gpu-agent (or another server) that wants a token: pass --api-token to identify it';
    const body = (await r.json()) as { name?: string; version?: string };
    return body.name === 'gpu-node-agent' ? `a gpu-agent ${body.version ?? ''} answers there` : undefined;
  } catch {
    return undefined;
  }
}
