#!/usr/bin/python3
"""A minimal coordinator written from docs/coordinator-protocol.md alone (message shapes, codes,
close codes), in another language than the agent: Debian's python3 with python3-websockets and
python3-jsonschema. It registers one real agent, drives it through every command and every
error the doc names, validates every agent message against docs/coordinator-protocol.schema.json,
and prints one JSON line per check. Exit status 0 = every check passed.

Usage: python_coordinator.py SCHEMA_JSON TOKEN   (prints {"port": N} first, then the checks)
"""
import asyncio
import json
import re
import sys

import jsonschema
import websockets

SCHEMA_PATH, TOKEN = sys.argv[1], sys.argv[2]
with open(SCHEMA_PATH) as f:
    DEFS = json.load(f)["$defs"]
AGENT_MESSAGE = jsonschema.Draft202012Validator({"$ref": "#/$defs/AgentMessage", "$defs": DEFS})
PATH_RE = re.compile(r"(^|[\s'\"(])/[^\s'\"]+/")

failures = []
connections = 0


def check(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), **({"detail": str(detail)[:500]} if not ok else {})}), flush=True)
    if not ok:
        failures.append(name)


class Agent:
    """One agent connection: every message is validated, kept, and awaited by predicate."""

    def __init__(self, ws):
        self.ws = ws
        self.inbox = []
        self.cond = asyncio.Condition()
        self.invalid = []

    async def pump(self):
        try:
            async for text in self.ws:
                msg = json.loads(text)
                errors = [e.message for e in AGENT_MESSAGE.iter_errors(msg)]
                if errors:
                    self.invalid.append((msg.get("type"), errors[:2]))
                async with self.cond:
                    self.inbox.append(msg)
                    self.cond.notify_all()
        except websockets.ConnectionClosed:
            pass

    async def next(self, pred, timeout=20):
        async def wait():
            async with self.cond:
                while True:
                    for i, m in enumerate(self.inbox):
                        if pred(m):
                            return self.inbox.pop(i)
                    await self.cond.wait()
        return await asyncio.wait_for(wait(), timeout)

    async def command(self, cid, command):
        await self.ws.send(json.dumps({"type": "command", "id": cid, "command": command}))
        return await self.next(lambda m: m.get("type") == "command_result" and m.get("id") == cid, 60)


async def scenario(agent, reg):
    # register: required fields and the additions within v1
    check("register is the first message and has protocolVersion 1", reg.get("type") == "register" and reg.get("protocolVersion") == 1, reg.get("type"))
    for field in ["nodeId", "sessionId", "hostname", "agentVersion", "url", "labels", "gpus", "models", "capacity", "nodeState"]:
        check(f"register has {field}", field in reg)
    check("register lists capabilities", set(["command_dedup", "command_result_code"]) <= set(reg.get("capabilities", [])), reg.get("capabilities"))
    await agent.ws.send(json.dumps({"type": "registered", "protocolVersion": 1, "nodeId": reg["nodeId"], "sessionId": reg["sessionId"], "heartbeatIntervalMs": 200}))
    hb = await agent.next(lambda m: m.get("type") == "heartbeat")
    check("heartbeat after registered", hb["seq"] >= 1 and hb["nodeState"] == "ready", hb)

    r = await agent.command("ping-1", {"type": "ping"})
    check("ping answers ok with code ok", r["ok"] is True and r.get("code") == "ok", r)
    again = await agent.command("ping-1", {"type": "ping"})
    check("a repeated command id gets the first result again", again == r, again)

    r = await agent.command("load-nope", {"type": "load_model", "model": "nope"})
    check("load_model of an unknown model: not_found", r["ok"] is False and r.get("code") == "not_found", r)
    check("no server path in the error", not PATH_RE.search(r.get("error", "")), r.get("error"))
    r = await agent.command("load-path", {"type": "load_model", "model": "../../etc/passwd"})
    check("a path as model name: invalid_command", r["ok"] is False and r.get("code") == "invalid_command", r)
    r = await agent.command("format", {"type": "format_disk"})
    check("an unknown command: invalid_command", r["ok"] is False and r.get("code") == "invalid_command", r)
    r = await agent.command("corrupt", {"type": "load_model", "model": "corrupt"})
    check("a model that fails to load: failed", r["ok"] is False and r.get("code") == "failed" and not PATH_RE.search(r.get("error", "")), r)

    r = await agent.command("unload-1", {"type": "unload_model", "model": "identity_fp32"})
    check("unload_model: ok", r["ok"] is True and r.get("code") == "ok", r)
    ev = await agent.next(lambda m: m.get("type") == "event" and m["event"].get("kind") == "model_state" and m["event"].get("model") == "identity_fp32" and m["event"]["state"] == "UNAVAILABLE")
    check("a model_state event for the unload", ev is not None)
    r = await agent.command("load-1", {"type": "load_model", "model": "identity_fp32"})
    check("load_model: ok once READY", r["ok"] is True and r.get("code") == "ok", r)

    # conflicting commands on one model: the second is refused while the first runs
    await agent.ws.send(json.dumps({"type": "command", "id": "load-mlp", "command": {"type": "load_model", "model": "mlp"}}))
    r2 = await agent.command("unload-mlp", {"type": "unload_model", "model": "mlp"})
    r1 = await agent.next(lambda m: m.get("type") == "command_result" and m.get("id") == "load-mlp", 60)
    check("unload_model while the same model loads: conflict", r2["ok"] is False and r2.get("code") == "conflict", r2)
    check("the load it conflicted with still succeeds", r1["ok"] is True, r1)

    r = await agent.command("cordon-1", {"type": "cordon"})
    check("cordon: ok", r["ok"] is True, r)
    hb = await agent.next(lambda m: m.get("type") == "heartbeat" and m["nodeState"] == "cordoned")
    check("a heartbeat reports cordoned (before the result)", hb is not None)
    r = await agent.command("drain-1", {"type": "drain"})
    check("drain of an idle node: ok", r["ok"] is True, r)
    ev = await agent.next(lambda m: m.get("type") == "event" and m["event"].get("kind") == "node_state" and m["event"]["state"] == "draining")
    check("drain sends a node_state event", ev is not None)
    r = await agent.command("load-draining", {"type": "load_model", "model": "identity_fp32"})
    check("load_model while draining: node_draining", r["ok"] is False and r.get("code") == "node_draining", r)
    r = await agent.command("cordon-draining", {"type": "cordon"})
    check("cordon while draining: ok, stays draining", r["ok"] is True, r)
    hb = await agent.next(lambda m: m.get("type") == "heartbeat" and m["seq"] > 0)
    r = await agent.command("uncordon-1", {"type": "uncordon"})
    check("uncordon: ok", r["ok"] is True, r)
    hb = await agent.next(lambda m: m.get("type") == "heartbeat" and m["nodeState"] == "ready")
    check("a heartbeat reports ready again", hb is not None)

    # errors for malformed messages; the connection stays open
    await agent.ws.send("{not json")
    e = await agent.next(lambda m: m.get("type") == "error")
    check("invalid JSON: error bad_json", e.get("code") == "bad_json", e)
    await agent.ws.send(json.dumps({"type": "reboot"}))
    e = await agent.next(lambda m: m.get("type") == "error")
    check("unknown type: error unknown_type", e.get("code") == "unknown_type", e)
    await agent.ws.send(json.dumps({"type": "registered"}))
    e = await agent.next(lambda m: m.get("type") == "error")
    check("invalid fields: error invalid_message", e.get("code") in ("invalid_message", "unexpected"), e)
    await agent.ws.send(b"\x01\x02")
    e = await agent.next(lambda m: m.get("type") == "error")
    check("binary frame: error bad_json", e.get("code") == "bad_json", e)
    r = await agent.command("ping-2", {"type": "ping"})
    check("still usable after the errors", r["ok"] is True, r)

    check("every agent message validated against the JSON Schema", not agent.invalid, agent.invalid[:3])

    # a frame over the agent's 1 MiB limit: the agent closes with 1009 and reconnects
    await agent.ws.send(json.dumps({"type": "command", "id": "big", "command": {"type": "ping"}, "pad": "x" * (1024 * 1024 + 16)}))
    try:
        await asyncio.wait_for(agent.ws.wait_closed(), 10)
    except asyncio.TimeoutError:
        pass
    check("a frame over 1 MiB: the agent closes with 1009", agent.ws.close_code == 1009, agent.ws.close_code)


async def main():
    second = asyncio.get_running_loop().create_future()
    first_done = asyncio.get_running_loop().create_future()

    async def handler(ws, path=None):
        global connections
        connections += 1
        auth = ws.request_headers.get("Authorization", "")
        if auth != f"Bearer {TOKEN}":
            await ws.close(4001, "invalid token")
            return
        agent = Agent(ws)
        pump = asyncio.create_task(agent.pump())
        reg = await agent.next(lambda m: True)
        if not first_done.done():
            try:
                await scenario(agent, reg)
            except Exception as err:  # a timeout waiting for an answer is a failure
                check("scenario ran to the end", False, repr(err))
            first_done.set_result(reg)
        elif not second.done():
            second.set_result(reg)
            await ws.send(json.dumps({"type": "registered", "protocolVersion": 1, "nodeId": reg["nodeId"], "sessionId": reg["sessionId"]}))
        await pump

    async with websockets.serve(handler, "127.0.0.1", 0, max_size=4 * 1024 * 1024) as server:
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        reg1 = await asyncio.wait_for(first_done, 180)
        try:
            reg2 = await asyncio.wait_for(second, 30)
            check("after the close the agent registers again with the same nodeId and sessionId", reg2["nodeId"] == reg1["nodeId"] and reg2["sessionId"] == reg1["sessionId"], reg2)
        except asyncio.TimeoutError:
            check("after the close the agent registers again", False, "no second register within 30 s")
    print(json.dumps({"done": True, "failures": failures}), flush=True)
    sys.exit(1 if failures else 0)


asyncio.run(main())
