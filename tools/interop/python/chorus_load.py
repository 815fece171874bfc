"""Drives a Chorus node with Python's grpcio at its default settings: many threads share one
channel, one unary call per message. Prints one JSON object: every call's status, and every
time the channel left READY (a GOAWAY, a reset, a ping policy that closed it).

Requests are encoded by hand (a few lines of protobuf wire format): no generated code.
"""
import argparse
import json
import threading
import time

import grpc


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def request_id(client, sequence):
    return field(1, client) + varint(2 << 3) + varint(sequence)


def message(*fields):
    return b"".join(field(i + 1, f) for i, f in enumerate(fields))


def first_string(data):
    """Field 1 of LoginResponse (the token), which comes first."""
    assert data[0] == (1 << 3 | 2)
    length, shift, i = 0, 0, 1
    while True:
        length |= (data[i] & 0x7F) << shift
        shift += 7
        i += 1
        if data[i - 1] < 0x80:
            break
    return data[i:i + length].decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="127.0.0.1:7001")
    parser.add_argument("--ca", default="")
    parser.add_argument("--callers", type=int, default=150)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--user", default="py%d" % (time.time_ns() % 1_000_000_000))
    args = parser.parse_args()

    if args.ca:
        with open(args.ca, "rb") as f:
            channel = grpc.secure_channel(args.addr, grpc.ssl_channel_credentials(root_certificates=f.read()))
    else:
        channel = grpc.insecure_channel(args.addr)

    states = []
    left_ready = [0]
    last = [None]

    def watch(state):
        states.append(state.name)
        if last[0] == grpc.ChannelConnectivity.READY and state != grpc.ChannelConnectivity.READY:
            left_ready[0] += 1
        last[0] = state

    channel.subscribe(watch, try_to_connect=True)

    def call(method, request):
        return channel.unary_unary("/chorus.v1.Chat/" + method)(request, timeout=10)

    client = "py-" + args.user
    call("CreateAccount", message(request_id(client, 1), args.user, "pw"))
    token = first_string(call("Login", message(request_id(client, 2), args.user, "pw")))
    states.clear()
    left_ready[0] = 0

    lock = threading.Lock()
    report = {"calls": 0, "ok": 0, "errors": {}, "first_error": ""}
    latencies = []
    sequence = [2]
    end = time.monotonic() + args.duration
    start = time.monotonic()

    def caller():
        mine = []
        while time.monotonic() < end:
            with lock:
                sequence[0] += 1
                seq = sequence[0]
            began = time.monotonic()
            try:
                call("SendMessage", message(request_id(client, seq), token, args.user, "from grpcio"))
                error = None
            except grpc.RpcError as e:
                error = e
            elapsed = time.monotonic() - began
            with lock:
                report["calls"] += 1
                if error is None:
                    report["ok"] += 1
                    mine.append(elapsed)
                else:
                    code = error.code().name
                    report["errors"][code] = report["errors"].get(code, 0) + 1
                    report["first_error"] = report["first_error"] or "%s: %s" % (code, error.details())
            if error is not None:
                time.sleep(0.01)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller) for _ in range(args.callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    latencies.sort()
    report.update({
        "left_ready": left_ready[0],
        "states": list(states),
        "seconds": seconds,
        "per_second": report["ok"] / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0,
        "p99_ms": latencies[len(latencies) * 99 // 100] * 1000 if latencies else 0,
    })
    channel.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
