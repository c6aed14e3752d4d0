/**
 * How the gateway reaches the rest of the coordinator (gateway/gateway.ts GatewayHooks): budgets
 * and cost accounting go to the ledger (each answered inference, HTTP or gRPC, is recorded with
 * the compute time its node reported, priced by the node's labels), and load on demand reads
 * the manifests.
 */
import { COMPUTE_TIME_HEADER, type CostLedger } from './cost/ledger.js';
import type { FleetState } from './fleet-state.js';
import type { GatewayHooks } from './gateway/gateway.js';
import type { ManifestRegistry } from './manifests/registry.js';

export function gatewayHooks(fleet: FleetState, ledger: CostLedger, manifests: ManifestRegistry): GatewayHooks {
  return {
    admitClient: (client) => ledger.refusal(client),
    manifestOf: (model) => manifests.get(model)?.manifest,
    onRouted: (r) => {
      if (r.kind === 'metadata') return;
      const n = r.nodeId ? fleet.nodes.get(r.nodeId) : undefined;
      const us = Number(r.nodeHeaders?.[COMPUTE_TIME_HEADER] ?? 0);
      ledger.record({
        model: r.model, client: r.identity, status: r.status,
        node: n && { nodeId: n.nodeId, labels: n.info.labels, hostname: n.info.hostname },
        computeUs: Number.isFinite(us) && us > 0 ? us : 0,
        latencyMs: r.latencyMs,
      });
    },
  };
}
