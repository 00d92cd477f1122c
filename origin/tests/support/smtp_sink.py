#!/usr/bin/env python3
"""A real SMTP server for Tessera's tests (aiosmtpd): accepts every message on 127.0.0.1 and
writes each, as received, to DIR/<time>-<n>.eml (written whole, then renamed, so that a reader
never sees half a message). With --tls-cert/--tls-key it offers STARTTLS and requires it.
Prints "ready" once listening; stops on SIGTERM or SIGINT."""

import argparse
import itertools
import os
import signal
import ssl
import threading
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        name = f"{time.time_ns()}-{os.getpid()}-{n}"
        partial = os.path.join(self.directory, f".{name}.part")
        with open(partial, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(partial, os.path.join(self.directory, f"{name}.eml"))
        return "250 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    kwargs = {}
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        kwargs = {"tls_context": context, "require_starttls": True}
    controller = Controller(Sink(args.dir), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
