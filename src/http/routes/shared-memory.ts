/**
 * Triton's shared memory extensions over HTTP.
 * - System shared memory (implemented, see shm/): register / unregister / status of regions
 *   that inputs and outputs then name in their `shared_memory_*` parameters.
 * - CUDA shared memory: not supported (onnxruntime-node has no CUDA IPC handles to open).
 *   Registering answers 400 saying so; status lists nothing; unregistering everything
 *   succeeds, since nothing is registered (clients do that first to start clean).
 */
import type { FastifyPluginAsync } from 'fastify';
import { AgentError, invalid } from '../../errors.js';
import { systemShmFor } from '../../shm/index.js';
import { jsonBody } from '../body.js';
import type { HttpContext } from '../context.js';

const CUDA_SHM = 'CUDA shared memory is not supported by gpu-node-agent (onnxruntime-node cannot open CUDA IPC handles); use system shared memory (/v2/systemsharedmemory) or send the data in the request';

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

export const sharedMemoryRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  const shm = systemShmFor(ctx);
  app.addHook('onClose', async () => shm.closeAll());

  app.get('/v2/systemsharedmemory/status', async () => shm.status());
  app.get<{ Params: { name: string } }>('/v2/systemsharedmemory/region/:name/status', async (req) => shm.status(req.params.name));
  app.post<{ Params: { name: string } }>('/v2/systemsharedmemory/region/:name/register', async (req) => {
    shm.register(req.params.name, objectBody(jsonBody(req)));
    return {};
  });
  app.post<{ Params: { name: string } }>('/v2/systemsharedmemory/region/:name/unregister', async (req) => {
    shm.unregister(req.params.name);
    return {};
  });
  app.post('/v2/systemsharedmemory/unregister', async () => {
    shm.unregister();
    return {};
  });

  app.get('/v2/cudasharedmemory/status', async () => []);
  app.get<{ Params: { name: string } }>('/v2/cudasharedmemory/region/:name/status', async (req) => {
    throw invalid(`Unable to find cuda shared memory region: '${req.params.name}' (${CUDA_SHM})`);
  });
  app.post('/v2/cudasharedmemory/region/:name/register', async () => {
    throw new AgentError('INVALID_ARGUMENT', CUDA_SHM);
  });
  app.post<{ Params: { name: string } }>('/v2/cudasharedmemory/region/:name/unregister', async (req) => {
    throw invalid(`Unable to find cuda shared memory region: '${req.params.name}' (${CUDA_SHM})`);
  });
  app.post('/v2/cudasharedmemory/unregister', async () => ({}));
};
