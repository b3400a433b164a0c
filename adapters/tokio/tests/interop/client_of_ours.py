"""Python `websockets` as a client of heartbeat-tokio's server.

Usage: python3 client_of_ours.py ws://127.0.0.1:PORT/ws
Prints one JSON line with what it saw. Works with websockets 10.x (Debian) to current.
"""
import asyncio
import json
import sys

import websockets


async def recv_until(ws, wanted, limit=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        left = end - loop.time()
        if left <= 0:
            raise TimeoutError(f"never received {wanted!r}")
        message = await asyncio.wait_for(ws.recv(), left)
        if message == wanted:
            return


async def main(url):
    out = {"websockets": websockets.__version__}
    loop = asyncio.get_running_loop()
    # websockets pings every 0.2 s and closes with 1011 "keepalive ping timeout" if a pong
    # takes longer than 1 s: our server must answer protocol pings.
    async with websockets.connect(url, ping_interval=0.2, ping_timeout=1.0) as ws:
        await ws.send(json.dumps({"type": "ping", "seq": 41}, separators=(",", ":")))
        await recv_until(ws, '{"type":"pong","seq":41}')
        out["json_pong"] = True
        await ws.send("hello from python")
        await recv_until(ws, "hello from python")
        out["echo"] = True
        start = loop.time()
        waiter = await ws.ping(b"py")
        await asyncio.wait_for(waiter, 2.0)
        out["protocol_pong_ms"] = (loop.time() - start) * 1000.0
        # Stay a while, reading whatever comes (the server's own pings are protocol frames,
        # answered by websockets itself).
        end = loop.time() + 1.5
        while loop.time() < end:
            try:
                await asyncio.wait_for(ws.recv(), end - loop.time())
            except asyncio.TimeoutError:
                break
        out["open_after_1500ms"] = ws.close_code is None
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
