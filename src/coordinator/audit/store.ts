/**
 * The coordinator's persistent state: an append-only audit trail and the node registry, in one
 * SQLite file (`<stateDir>/coordinator.db`, better-sqlite3, WAL). Without a state dir the same
 * schema lives in memory (tests, throwaway coordinators).
 *
 * - `audit`: one row per command (who: the token's identity; what; target node and model; when;
 *   result; duration) and per node state change (health Ready/Unknown/Gone, and the agent's
 *   ready/cordoned/draining). Triggers refuse UPDATE and DELETE: rows are only ever added.
 * - `nodes`: the last register message of every node and when it was last heard from, so a
 *   restarted coordinator lists its fleet at once (as Unknown until each agent reconnects).
 * - `manifests`: per model, the package manifest the gateway's load on demand pulls by
 *   (manifests/registry.ts); the audit trail records every change to it.
 *
 * Writes are synchronous and small (state changes and commands, never heartbeats), so the
 * trail is on disk before the HTTP answer that reports the command goes out.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { RegisterMessage } from '../protocol.js';

export const DB_FILE = 'coordinator.db';

/** manifest: a model's manifest was set or removed (nodeId is '' for such fleet-wide rows). */
export type AuditKind = 'command' | 'node_health' | 'node_state' | 'manifest';

export interface AuditEntry {
  readonly kind: AuditKind;
  /** Epoch ms when it started (commands) or happened. */
  readonly at: number;
  readonly nodeId: string;
  /** Which token: 'admin', a client name, 'gateway (…)', or 'agent' / 'coordinator' for state changes. */
  readonly identity: string;
  /** Command type, or the new state. */
  readonly action: string;
  /** A command's model, or the previous state. */
  readonly target?: string | undefined;
  /** ok | failed | timed_out | refused for commands; the reason for state changes. */
  readonly result: string;
  readonly error?: string | undefined;
  readonly durationMs?: number | undefined;
  readonly commandId?: string | undefined;
}

export interface AuditRow extends Omit<AuditEntry, 'at'> {
  readonly id: number;
  readonly at: string;
}

export interface StoredNode {
  readonly info: RegisterMessage;
  readonly registeredAt: number;
  readonly lastSeen: number;
}

export class CoordinatorStore {
  private readonly db: Database.Database;
  private readonly insertAudit: Database.Statement;
  private readonly upsertNode: Database.Statement;
  private readonly touchNode: Database.Statement;
  private readonly upsertManifest: Database.Statement;
  private readonly deleteManifest: Database.Statement;
  readonly file: string;

  constructor(stateDir: string | undefined) {
    if (stateDir) mkdirSync(stateDir, { recursive: true });
    this.file = stateDir ? path.join(stateDir, DB_FILE) : ':memory:';
    this.db = new Database(this.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        node_id TEXT NOT NULL,
        identity TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        result TEXT NOT NULL,
        error TEXT,
        duration_ms REAL,
        command_id TEXT
      );
      CREATE INDEX IF NOT EXISTS audit_node_at ON audit (node_id, at);
      CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
      CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
      CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
      CREATE TABLE IF NOT EXISTS nodes (
        node_id TEXT PRIMARY KEY,
        info TEXT NOT NULL,
        registered_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS manifests (
        model TEXT PRIMARY KEY,
        manifest TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        updated_by TEXT NOT NULL
      );
    `);
    this.insertAudit = this.db.prepare(`INSERT INTO audit (at, kind, node_id, identity, action, target, result, error, duration_ms, command_id)
      VALUES (@at, @kind, @nodeId, @identity, @action, @target, @result, @error, @durationMs, @commandId)`);
    this.upsertNode = this.db.prepare(`INSERT INTO nodes (node_id, info, registered_at, last_seen) VALUES (?, ?, ?, ?)
      ON CONFLICT(node_id) DO UPDATE SET info = excluded.info, registered_at = excluded.registered_at, last_seen = excluded.last_seen`);
    this.touchNode = this.db.prepare('UPDATE nodes SET last_seen = ? WHERE node_id = ?');
    this.upsertManifest = this.db.prepare(`INSERT INTO manifests (model, manifest, updated_at, updated_by) VALUES (?, ?, ?, ?)
      ON CONFLICT(model) DO UPDATE SET manifest = excluded.manifest, updated_at = excluded.updated_at, updated_by = excluded.updated_by`);
    this.deleteManifest = this.db.prepare('DELETE FROM manifests WHERE model = ?');
  }

  append(e: AuditEntry): void {
    this.insertAudit.run({
      at: Math.round(e.at), kind: e.kind, nodeId: e.nodeId, identity: e.identity, action: e.action,
      target: e.target ?? null, result: e.result, error: e.error ?? null,
      durationMs: e.durationMs === undefined ? null : Math.round(e.durationMs * 1000) / 1000, commandId: e.commandId ?? null,
    });
  }

  /** Oldest first; `since` is epoch ms (inclusive); at most `limit` rows (default 1000). */
  query(filter: { nodeId?: string; since?: number; afterId?: number; limit?: number } = {}): AuditRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.afterId !== undefined) {
      where.push('id > ?');
      args.push(filter.afterId);
    }
    if (filter.nodeId) {
      where.push('node_id = ?');
      args.push(filter.nodeId);
    }
    if (filter.since !== undefined) {
      where.push('at >= ?');
      args.push(filter.since);
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, filter.limit ?? 1000) as Record<string, unknown>[];
    return rows.map((r) => {
      const row: Record<string, unknown> = {
        id: r.id, at: new Date(r.at as number).toISOString(), kind: r.kind, nodeId: r.node_id, identity: r.identity,
        action: r.action, result: r.result,
      };
      if (r.target !== null) row.target = r.target;
      if (r.error !== null) row.error = r.error;
      if (r.duration_ms !== null) row.durationMs = r.duration_ms;
      if (r.command_id !== null) row.commandId = r.command_id;
      return row as unknown as AuditRow;
    });
  }

  /** The latest `limit` rows, oldest first. */
  latest(limit: number): AuditRow[] {
    const max = (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM audit').get() as { m: number }).m;
    return this.query({ afterId: Math.max(0, max - limit), limit });
  }

  saveNode(info: RegisterMessage, registeredAt: number, lastSeen: number): void {
    this.upsertNode.run(info.nodeId, JSON.stringify(info), registeredAt, lastSeen);
  }

  touch(nodeId: string, lastSeen: number): void {
    this.touchNode.run(lastSeen, nodeId);
  }

  loadNodes(): StoredNode[] {
    const rows = this.db.prepare('SELECT info, registered_at, last_seen FROM nodes ORDER BY registered_at').all() as { info: string; registered_at: number; last_seen: number }[];
    const out: StoredNode[] = [];
    for (const r of rows) {
      try {
        out.push({ info: JSON.parse(r.info) as RegisterMessage, registeredAt: r.registered_at, lastSeen: r.last_seen });
      } catch {
        // a row this version cannot read is skipped; the node re-registers
      }
    }
    return out;
  }

  /** Set a model's manifest (JSON text, validated by the caller). */
  saveManifest(model: string, manifestJson: string, at: number, by: string): void {
    this.upsertManifest.run(model, manifestJson, at, by);
  }

  /** Remove a model's manifest; whether there was one. */
  removeManifest(model: string): boolean {
    return this.deleteManifest.run(model).changes > 0;
  }

  loadManifests(): { model: string; manifest: string; updatedAt: number; updatedBy: string }[] {
    const rows = this.db.prepare('SELECT model, manifest, updated_at, updated_by FROM manifests ORDER BY model').all() as { model: string; manifest: string; updated_at: number; updated_by: string }[];
    return rows.map((r) => ({ model: r.model, manifest: r.manifest, updatedAt: r.updated_at, updatedBy: r.updated_by }));
  }

  close(): void {
    this.db.close();
  }
}
