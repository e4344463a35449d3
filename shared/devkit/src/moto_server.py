"""moto's DynamoDB-compatible server for development and tests, handling one request at a time.

moto's TransactWriteItems deep-copies the table, applies the writes and restores the copy on
failure, without a lock. Served by moto_server's threaded server, concurrent requests can lose
each other's writes (measured: 12 of 32 concurrent conditional updates with a limit of 10
succeeded). Handled one at a time, every request is atomic, as in DynamoDB.

Exits when its parent process goes away, so a killed test run leaves nothing behind.
Usage: python moto_server.py HOST PORT
"""
import logging
import os
import signal
import sys
import threading
import time

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


def watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=False, use_reloader=False)


if __name__ == "__main__":
    main()
