/**
 * The reference coordinator: accepts agents on `ws://<host>:<port>/agents`, keeps the fleet (and
 * its registry and audit trail in SQLite, audit/), and exposes it over HTTP (fastify): the admin
 * API (admin-routes.ts, the agents' token), the routing gateway for inference clients
 * (gateway/, client tokens; grpc-gateway/ with --grpc-port), cost accounting (cost/),
 * manifests for load on demand (manifests/) and the dashboard (dashboard/).
 *
 * This file only puts the parts together, starts them in order and closes them in reverse:
 * - fleet-state.ts: the node records, their health and state changes, the sweep;
 * - agent-sockets.ts / agent-messages.ts / agent-wire.ts: the agents' connections and messages;
 * - commands.ts: commands to agents, with their audit rows;
 * - gateway-wiring.ts: the gateway's hooks into costs and manifests;
 * - http-app.ts: the HTTP routes and their auth.
 */
import type { CoordinatorOptions, RunningCoordinator } from './coordinator-options.js';
import { createAgentMessageHandler } from './agent-messages.js';
import { createAgentSockets } from './agent-sockets.js';
import { CoordinatorStore } from './audit/store.js';
import { createCommandSender } from './commands.js';
import { CostLedger } from './cost/ledger.js';
import { LiveFeed } from './dashboard/live-feed.js';
import { FleetState } from './fleet-state.js';
import type { NodeDetail, NodeView } from './fleet-types.js';
import { createGateway } from './gateway/gateway.js';
import type { GatewayFleet } from './gateway/fleet.js';
import { gatewayHooks } from './gateway-wiring.js';
import { startGrpcGateway, type GrpcGateway } from './grpc-gateway/server.js';
import { startGatewayProcesses, type GatewayProcesses } from './gateway-processes/primary.js';
import { buildHttpApp } from './http-app.js';
import { ManifestRegistry } from './manifests/registry.js';
import { nodeDetail, nodeView, positive, type NodeRecord } from './node-record.js';
import { AGENTS_PATH } from './protocol.js';
import { systemClock } from '../util/clock.js';
import { createLogger } from '../util/logger.js';

export { CommandRefused, type CommandOutcome, type NodeDetail, type NodeHealth, type NodeView } from './fleet-types.js';
export type { CoordinatorOptions, RunningCoordinator } from './coordinator-options.js';

/** Start the reference coordinator; resolves once it listens. */
export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  if (typeof options.token !== 'string' || options.token.length === 0) throw new TypeError('the coordinator needs a token (agents and HTTP clients send it as a bearer token)');
  const token = options.token;
  const clock = options.clock ?? systemClock;
  const log = (options.logger ?? createLogger('info')).child({ component: 'coordinator' });
  const heartbeatTimeoutMs = positive('heartbeatTimeoutMs', options.heartbeatTimeoutMs, 15_000);
  const goneAfterMs = positive('goneAfterMs', options.goneAfterMs, 300_000);
  const commandTimeoutMs = positive('commandTimeoutMs', options.commandTimeoutMs, 60_000);
  const pingIntervalMs = positive('pingIntervalMs', options.pingIntervalMs, 15_000);
  const registerTimeoutMs = positive('registerTimeoutMs', options.registerTimeoutMs, 10_000);
  const maxEvents = Math.max(1, Math.floor(options.maxEvents ?? 100));

  let closed = false;
  const store = new CoordinatorStore(options.stateDir);
  const fleet = new FleetState(store, clock, log, { heartbeatTimeoutMs, goneAfterMs });
  let processes: GatewayProcesses | undefined; // --gateway-processes, started once the app listens
  const manifests = new ManifestRegistry(store, options.manifests ?? [], () => processes?.manifestsChanged());
  const sendCommand = createCommandSender({ fleet, store, clock, log, commandTimeoutMs, isClosed: () => closed });

  const gatewayFleet: GatewayFleet = {
    nodes: () => fleet.gatewayNodes(),
    sendCommand,
    onModelsChanged: (l) => fleet.onModelsChanged(l),
  };
  const ledger = new CostLedger(options.cost);
  const hooks = gatewayHooks(fleet, ledger, manifests);
  const gateway = createGateway(gatewayFleet, token, options.gateway ?? {}, log, clock, hooks);
  const viewOf = (n: NodeRecord): NodeView => nodeView(n, fleet.healthOf(n), gateway.routing(n.nodeId));
  const detailOf = (n: NodeRecord): NodeDetail => nodeDetail(n, fleet.healthOf(n), gateway.routing(n.nodeId));
  const nodes = () => [...fleet.nodes.values()].map(viewOf);
  const node = (id: string) => {
    const n = fleet.nodes.get(id);
    return n && detailOf(n);
  };

  const feed = new LiveFeed({
    nodes,
    node: (id) => {
      const n = fleet.nodes.get(id);
      return n && viewOf(n);
    },
    auditAfter: (id) => store.query({ afterId: id, limit: 500 }),
    latestAudit: (limit) => store.latest(limit),
    costs: () => ledger.report(),
  }, clock, options.dashboardIntervalMs ?? 500);
  fleet.onDirty = (id) => {
    feed.markDirty(id);
    processes?.markDirty(id);
  };

  const sockets = createAgentSockets({
    token, fleet, clock, log, pingIntervalMs, registerTimeoutMs,
    onMessage: createAgentMessageHandler({ fleet, store, clock, log, maxEvents, heartbeatIntervalMs: options.heartbeatIntervalMs }),
  });
  const app = await buildHttpApp({
    token, log, onUpgrade: sockets.onUpgrade, ledger, manifests, gateway, feed,
    admin: { audit: (filter) => store.query(filter), nodes, node, sendCommand },
  });

  fleet.restore();

  let address: string;
  let grpcDoor: GrpcGateway | undefined;
  try {
    address = await app.listen({ port: options.port ?? 9000, host: options.host ?? '127.0.0.1' });
    if (options.grpcPort !== undefined) {
      grpcDoor = await startGrpcGateway(gateway, gatewayFleet, options.gateway ?? {}, hooks, log, clock, { host: options.host ?? '127.0.0.1', port: options.grpcPort });
    }
    if (options.gatewayProcesses && options.gatewayProcesses.count > 0) {
      const manifestMap = () => Object.fromEntries(manifests.list().map(({ model, entry }) => [model, entry.manifest]));
      processes = await startGatewayProcesses(
        { count: options.gatewayProcesses.count, port: options.gatewayProcesses.port, host: options.host ?? '127.0.0.1', logLevel: options.gatewayProcesses.logLevel ?? 'info' },
        { adminToken: token, gateway: options.gateway ?? {}, fleet: gatewayFleet, hooks, manifests: manifestMap, log },
      );
    }
  } catch (err) {
    await processes?.close();
    await grpcDoor?.close();
    await sockets.closeAll();
    await app.close().catch(() => undefined);
    await gateway.close();
    store.close();
    throw err;
  }
  fleet.startSweep();
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port ?? 9000;
  const agentsUrl = `${address.replace(/^http/, 'ws')}${AGENTS_PATH}`;
  log.info({ url: address, agentsUrl }, 'coordinator listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      fleet.stopSweep();
      feed.close();
      for (const n of fleet.nodes.values()) {
        for (const [id, settle] of n.pending) settle({ id, ok: false, code: 'coordinator_shutting_down', error: 'the coordinator is shutting down' });
        n.pending.clear();
      }
      await processes?.close();
      await sockets.closeAll();
      await grpcDoor?.close();
      await app.close();
      await gateway.close();
      store.close();
      log.info('coordinator closed');
    })();
    return closing;
  };

  return {
    url: address,
    agentsUrl,
    port,
    ...(grpcDoor ? { grpcAddress: grpcDoor.address } : {}),
    ...(processes ? { gatewayUrl: processes.url } : {}),
    gatewayProcessPids: () => processes?.pids() ?? [],
    nodes,
    node,
    audit: (filter) => store.query(filter),
    costs: () => ledger.report(),
    sendCommand,
    close,
  };
}
