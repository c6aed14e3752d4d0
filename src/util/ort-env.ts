/**
 * onnxruntime's own telemetry off by default. onnxruntime-node 1.29 otherwise creates
 * `~/.cache/Microsoft/DeveloperTools/.onnxruntime/` (a persistent `deviceid` and an
 * `onnxruntime.db` of queued events it uploads where a network exists) and a
 * `/tmp/mat-debug-<pid>.log` per process. It reads ORT_DISABLE_TELEMETRY when its environment
 * is created (the first session), so this side-effect module is imported before
 * onnxruntime-node everywhere it is loaded; worker threads inherit the process environment.
 * A value the operator set is kept; `--ort-telemetry` opts in (see `applyOrtTelemetry`).
 */
if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';

/** `--ort-telemetry true` lets onnxruntime keep its telemetry; call before the first session. */
export function applyOrtTelemetry(optIn: boolean): void {
  if (optIn) delete process.env.ORT_DISABLE_TELEMETRY;
  else process.env.ORT_DISABLE_TELEMETRY = '1';
}
