/**
 * The admin API for manifests (admin token, like every non-inference route):
 *   GET    /manifests                     every known manifest with its digest and who set it
 *   GET    /models/{name}/manifest        one (404 when none)
 *   PUT    /models/{name}/manifest        set it: the body is the manifest; its name must be {name}
 *   DELETE /models/{name}/manifest        remove it (404 when none)
 * Bad manifests get a 400 naming the problem (the same validation as load_model's source).
 */
import type { FastifyInstance } from 'fastify';
import { ManifestError, parseManifest } from '../../sources/manifest.js';
import type { ManifestEntry, ManifestRegistry } from './registry.js';

const view = (model: string, e: ManifestEntry) => ({ model, digest: e.digest, updatedAt: e.updatedAt, updatedBy: e.updatedBy, manifest: e.manifest });

export function registerManifestRoutes(app: FastifyInstance, registry: ManifestRegistry): void {
  app.get('/manifests', async () => ({ manifests: registry.list().map(({ model, entry }) => view(model, entry)) }));
  app.get<{ Params: { name: string } }>('/models/:name/manifest', async (req, reply) => {
    const e = registry.get(req.params.name);
    if (!e) return reply.code(404).send({ error: `no manifest for model '${req.params.name}' (PUT /models/${req.params.name}/manifest sets one)` });
    return view(req.params.name, e);
  });
  app.put<{ Params: { name: string } }>('/models/:name/manifest', async (req, reply) => {
    let manifest;
    try {
      manifest = parseManifest(req.body);
    } catch (err) {
      if (err instanceof ManifestError) return reply.code(400).send({ error: err.message });
      throw err;
    }
    if (manifest.name !== req.params.name) {
      return reply.code(400).send({ error: `the manifest is for model '${manifest.name}', the URL names '${req.params.name}'` });
    }
    return view(manifest.name, registry.set(manifest, 'admin'));
  });
  app.delete<{ Params: { name: string } }>('/models/:name/manifest', async (req, reply) => {
    if (!registry.remove(req.params.name, 'admin')) return reply.code(404).send({ error: `no manifest for model '${req.params.name}'` });
    return { model: req.params.name, removed: true };
  });
}
