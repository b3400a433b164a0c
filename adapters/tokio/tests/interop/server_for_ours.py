"""Python `websockets` as an echo server for heartbeat-tokio's client.

Usage: python3 server_for_ours.py SECONDS
Prints the port on the first line, serves for SECONDS, then prints one JSON line per closed
connection with its close code. Pings every 0.2 s; an unanswered ping closes after 0.5 s.
"""
import asyncio
import json
import sys

import websockets

closed = []


async def handler(ws, *_path):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    closed.append(ws.close_code)


async def main(seconds):
    async with websockets.serve(
        handler, "127.0.0.1", 0, ping_interval=0.2, ping_timeout=0.5
    ) as server:
        port = list(server.sockets)[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.sleep(seconds)
    print(json.dumps({"closed": closed}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
