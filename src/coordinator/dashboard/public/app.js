// The fleet dashboard: live data from GET /events (Server-Sent Events read with fetch, so the
// admin token goes in the Authorization header), uPlot charts, and command buttons that POST
// to /nodes/{id}/commands. No build step: plain browser JavaScript.
'use strict';

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const POINTS = 120; // chart points kept per series

const state = { token: sessionStorage.getItem('fleetToken') || '', nodes: new Map(), audit: new Map(), costs: null, fleet: [], lastFleet: null, abort: null };
const charts = new Map(); // `${nodeId}/${gpuIndex}` → { plot, data, lastSeq }
let fleetPlot = null;
const fleetData = [[], [], []];
window.__fleet = { state, charts, fleetData };

function toast(text) {
  $('#toast').textContent = text;
}

function since(iso) {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function money(v) {
  return v === undefined ? '–' : v < 0.01 ? v.toExponential(2) : v.toFixed(4);
}

// ---- live stream ----------------------------------------------------------------------------

async function connect() {
  state.abort?.abort();
  const abort = new AbortController();
  state.abort = abort;
  $('#status').textContent = 'connecting…';
  let res;
  try {
    res = await fetch('/events', { headers: { authorization: `Bearer ${state.token}` }, signal: abort.signal });
  } catch (err) {
    $('#status').textContent = `cannot reach the coordinator (${err.message}); retrying`;
    setTimeout(() => state.abort === abort && connect(), 2000);
    return;
  }
  if (res.status === 401) {
    $('#status').textContent = 'the admin token was refused';
    return;
  }
  $('#status').textContent = 'live';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        let data = '';
        for (const line of frame.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data) apply(event, JSON.parse(data));
      }
    }
  } catch (err) {
    if (abort.signal.aborted) return;
  }
  $('#status').textContent = 'stream ended; reconnecting';
  setTimeout(() => state.abort === abort && connect(), 2000);
}

function apply(kind, u) {
  if (kind === 'snapshot') {
    state.nodes.clear();
    state.audit.clear();
  }
  for (const n of u.nodes) {
    state.nodes.set(n.nodeId, n);
    addPoints(n);
  }
  for (const a of u.audit) state.audit.set(a.id, a);
  state.costs = u.costs;
  addFleetPoint(u);
  render();
}

// ---- charts ---------------------------------------------------------------------------------

function addPoints(n) {
  const hb = n.lastHeartbeat;
  if (!hb?.telemetry?.gpus) return;
  const t = Date.parse(hb.receivedAt) / 1000;
  for (const g of hb.telemetry.gpus) {
    const key = `${n.nodeId}/${g.index}`;
    let c = charts.get(key);
    if (!c) {
      c = { plot: null, data: [[], [], [], [], []], lastSeq: 0, nodeId: n.nodeId, gpu: g.index };
      charts.set(key, c);
    }
    if (hb.seq <= c.lastSeq) continue;
    c.lastSeq = hb.seq;
    const memPct = g.memoryUsedBytes != null && g.memoryTotalBytes ? (100 * g.memoryUsedBytes) / g.memoryTotalBytes : null;
    const row = [t, g.utilizationGpuPct ?? null, memPct, g.temperatureC ?? null, g.powerDrawW ?? null];
    row.forEach((v, i) => {
      c.data[i].push(v);
      if (c.data[i].length > POINTS) c.data[i].shift();
    });
    c.plot?.setData(c.data);
  }
}

function gpuChart(c, el) {
  return new uPlot({
    title: `GPU ${c.gpu}`, width: 420, height: 170,
    scales: { x: { time: true }, pct: { range: [0, 100] }, abs: { auto: true } },
    series: [
      {},
      { label: 'util %', scale: 'pct', stroke: '#2f6fdb' },
      { label: 'mem %', scale: 'pct', stroke: '#8a4fd8' },
      { label: 'temp °C', scale: 'abs', stroke: '#d8742f' },
      { label: 'power W', scale: 'abs', stroke: '#2a9d55' },
    ],
    axes: [{}, { scale: 'pct', label: '%' }, { scale: 'abs', side: 1, label: '°C / W', grid: { show: false } }],
  }, c.data, el);
}

function addFleetPoint(u) {
  const now = u.at / 1000;
  const prev = state.lastFleet;
  state.lastFleet = { t: now, ...u.fleet };
  if (!prev || now <= prev.t) return;
  const dt = now - prev.t;
  const rate = (u.fleet.requests - prev.requests) / dt;
  const errors = (u.fleet.errors - prev.errors) / dt;
  fleetData[0].push(now);
  fleetData[1].push(rate);
  fleetData[2].push(errors);
  for (const s of fleetData) if (s.length > POINTS) s.shift();
  $('#s-rate').textContent = rate.toFixed(1);
  $('#s-errors').textContent = errors.toFixed(1);
  if (!fleetPlot) {
    fleetPlot = new uPlot({
      title: 'fleet requests/s', width: 520, height: 150, scales: { x: { time: true } },
      series: [{}, { label: 'requests/s', stroke: '#2f6fdb' }, { label: 'errors/s', stroke: '#d83a2f' }],
    }, fleetData, $('#fleet-chart'));
  } else {
    fleetPlot.setData(fleetData);
  }
}

// ---- rendering ------------------------------------------------------------------------------

function render() {
  const nodes = [...state.nodes.values()];
  $('#s-nodes').textContent = `${nodes.filter((n) => n.state === 'Ready').length} / ${nodes.length}`;
  $('#s-cost').textContent = money(state.costs?.total?.cost);
  const container = $('#nodes');
  for (const n of nodes) {
    let el = document.getElementById(`node-${n.nodeId}`);
    if (!el) {
      el = document.createElement('div');
      el.className = 'node';
      el.id = `node-${n.nodeId}`;
      el.dataset.node = n.nodeId;
      el.innerHTML = `<div class="info"></div><div class="actions">
          <button data-cmd="cordon">cordon</button><button data-cmd="uncordon">uncordon</button><button data-cmd="drain">drain</button>
          <input class="load-name" placeholder="model" size="14"><button data-cmd="load_model">load</button>
        </div><div class="charts"></div><div class="models"></div>`;
      container.append(el);
    }
    el.querySelector('.info').innerHTML = nodeInfo(n);
    el.querySelector('.models').innerHTML = modelTable(n);
    for (const c of charts.values()) {
      if (c.nodeId !== n.nodeId || c.plot) continue;
      const box = document.createElement('div');
      box.className = 'gpu-chart';
      box.dataset.gpu = String(c.gpu);
      el.querySelector('.charts').append(box);
      c.plot = gpuChart(c, box);
    }
  }
  const rows = [...state.audit.values()].sort((a, b) => b.id - a.id).slice(0, 100);
  $('#audit tbody').innerHTML = rows.map((a) => `<tr><td>${esc(new Date(a.at).toLocaleTimeString())}</td><td><code>${esc(a.nodeId.slice(0, 8))}</code></td><td>${esc(a.identity)}</td><td>${esc(a.kind === 'command' ? a.action : `${a.kind}: ${a.action}`)}</td><td>${esc(a.target)}</td><td>${esc(a.result)}${a.error ? ` — ${esc(a.error)}` : ''}</td><td>${a.durationMs ?? ''}</td></tr>`).join('');
}

function nodeInfo(n) {
  const price = state.costs?.byNode?.[n.nodeId];
  const labels = Object.entries(n.labels).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ');
  const circuit = n.routing?.circuit?.state ?? 'closed';
  return `<h3><code>${esc(n.nodeId)}</code> ${esc(n.hostname)}
      <span class="badge state ${esc(n.state)}">${esc(n.state)}</span>
      <span class="badge node-state ${esc(n.nodeState)}" data-node-state="${esc(n.nodeState)}">${esc(n.nodeState)}</span>
      ${circuit !== 'closed' ? `<span class="badge open">circuit ${esc(circuit)}</span>` : ''}</h3>
    <div class="muted">${esc(n.url)} · ${labels || 'no labels'} · price/h ${price ? price.pricePerHour : '–'} · cost ${money(price?.cost)}
      · connected since ${esc(since(n.registeredAt))} · last heartbeat ${esc(since(n.lastHeartbeat?.receivedAt))} · outstanding ${n.routing?.outstanding ?? 0}</div>`;
}

function modelTable(n) {
  const load = new Map((n.lastHeartbeat?.models ?? []).map((m) => [`${m.name}/${m.version}`, m]));
  const byModel = state.costs?.byModel ?? {};
  const rows = n.models.map((m) => {
    const l = load.get(`${m.name}/${m.version}`);
    const c = byModel[m.name];
    return `<tr data-model="${esc(m.name)}"><td>${esc(m.name)}</td><td>${esc(m.version ?? '')}</td><td class="model-state">${esc(m.state)}</td><td>${l ? l.queueDepth + l.inFlight : ''}</td><td>${l ? l.throughput.toFixed(1) : ''}</td><td>${c?.p99Ms !== undefined ? c.p99Ms.toFixed(1) : ''}</td><td>${money(c?.cost)}</td>
      <td>${m.state === 'READY' ? `<button data-cmd="unload_model" data-model="${esc(m.name)}">unload</button>` : `<button data-cmd="load_model" data-model="${esc(m.name)}">load</button>`}</td></tr>`;
  });
  return `<table><thead><tr><th>model</th><th>version</th><th>state</th><th>queue+running</th><th>inf/s</th><th>p99 ms (fleet)</th><th>cost (fleet)</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

// ---- commands -------------------------------------------------------------------------------

async function command(nodeId, body) {
  if (!state.token) {
    const t = prompt('Admin token (runs commands on the fleet)');
    if (!t) return;
    setToken(t);
  }
  toast(`${body.type}${body.model ? ` ${body.model}` : ''} on ${nodeId.slice(0, 8)}…`);
  const res = await fetch(`/nodes/${encodeURIComponent(nodeId)}/commands`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${state.token}` }, body: JSON.stringify(body),
  });
  const out = await res.json().catch(() => ({}));
  toast(res.ok && out.ok ? `${body.type}: ok` : `${body.type}: ${out.code ?? res.status} ${out.error ?? ''}`);
}

document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-cmd]');
  if (!b) return;
  const node = b.closest('.node')?.dataset.node;
  if (!node) return;
  const type = b.dataset.cmd;
  let model = b.dataset.model;
  if (type === 'load_model' && !model) model = b.parentElement.querySelector('.load-name')?.value.trim();
  if ((type === 'load_model' || type === 'unload_model') && !model) return toast('name a model to load');
  void command(node, model ? { type, model } : { type });
});

function setToken(t) {
  state.token = t;
  sessionStorage.setItem('fleetToken', t);
}

$('#login').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken($('#token').value.trim());
  void connect();
});

setInterval(render, 5000); // refreshes the "… ago" texts between updates
if (state.token) void connect();
