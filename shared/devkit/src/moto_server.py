"""moto's DynamoDB-compatible server for development and tests: one request at a time, over
keep-alive connections.

moto's TransactWriteItems deep-copies the table, applies the writes and restores the copy on
failure, without a lock. Served concurrently, requests can lose each other's writes (measured:
12 of 32 concurrent conditional updates with a limit of 10 succeeded). Behind one lock around
the application, every request is atomic, as in DynamoDB.

Connections stay open between requests, as DynamoDB's do. moto's own server (werkzeug) closes
every connection after one answer, so each client request paid a new TCP connection, a cost the
real service does not charge (measured: 7 % of the benchmark's CPU per exchange, and most of
the SDK's time per request in the profile). waitress speaks HTTP/1.1 with keep-alive and holds
any number of idle connections without a thread each.

moto's TransactWriteItems also deep-copies the whole table once per item before it starts, to
restore it on failure: its time grows with the table (measured: 66 ms per exchange in a fresh
table, 256 ms after a thousand audit events). `item_level_rollback` keeps the same
all-or-nothing outcome by saving and restoring only the items the transaction names.

Exits when its parent process goes away, so a killed test run leaves nothing behind.
Usage: python moto_server.py HOST PORT
"""
import copy
import logging
import os
import signal
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve


def watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


class OneAtATime:
    """The WSGI application behind one lock: requests on any connection run one after another."""

    def __init__(self, app) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # The answer is built in full under the lock (moto's bodies are byte strings).
            return list(self.app(environ, start_response))


class TableCopies:
    """moto's `copy` module as `transact_write_items` sees it: while `skip` is set, a table is
    not copied (the transaction's own items are saved instead); everything else is copied."""

    skip = False

    @staticmethod
    def deepcopy(value, memo=None):
        if TableCopies.skip and isinstance(value, dynamodb_models.Table):
            return value
        return copy.deepcopy(value, memo)


def item_level_rollback() -> None:
    original = dynamodb_models.DynamoDBBackend.transact_write_items
    dynamodb_models.copy = TableCopies

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            if len(entry) != 1:
                break  # moto refuses it before writing anything
            _, op = next(iter(entry.items()))
            name = op.get("TableName")
            if name not in self.tables:
                continue
            table = self.tables[name]
            key = op.get("Key")
            if key is None and "Item" in op:
                attrs = op["Item"]
                key = {a: attrs[a] for a in (table.hash_key_attr, table.range_key_attr) if a and a in attrs}
            if not key:
                continue
            try:
                current = self.get_item(name, key)
            except Exception:  # an invalid key: moto refuses the transaction before writing it
                continue
            saved.append((name, key, None if current is None else current.to_json()["Attributes"]))
        TableCopies.skip = True
        try:
            return original(self, transact_items)
        except Exception:
            for name, key, attrs in reversed(saved):
                if attrs is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, copy.deepcopy(attrs))
            raise
        finally:
            TableCopies.skip = False

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    logging.getLogger("waitress").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    item_level_rollback()
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    # One thread runs the requests (the lock makes that explicit); waitress reads and writes
    # connections on its own thread, and idle connections cost nothing.
    serve(app, host=host, port=port, threads=1, connection_limit=1000, channel_timeout=300, ident=None)


if __name__ == "__main__":
    main()
