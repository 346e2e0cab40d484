# A TCP proxy between pgmux and PostgreSQL that can slow down what pgmux sends: a
# CancelRequest (so that it arrives after the query it was sent for has ended), or every other
# write (so that a query arrives after a cancel sent for it). Each connection runs on threads of
# its own; close() ends them all.
import socket
import struct
import threading
import time

from pgwire import CANCEL_REQUEST_CODE


class SlowProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.cancel_delay = 0.0  # seconds a CancelRequest waits before it is passed on
        self.write_delay = 0.0   # seconds each other read from pgmux waits
        self.cancels = 0         # CancelRequests passed on
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def entry(self, dbname):
        """A [databases] entry that reaches `dbname` through the proxy."""
        return f"host=127.0.0.1 port={self.port} dbname={dbname}"

    def close(self):
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _track(self, *socks):
        with self._lock:
            self._sockets.extend(socks)

    def _accept(self):
        while not self._closed:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(down,), daemon=True).start()

    def _serve(self, down):
        self._track(down)
        try:
            first = down.recv(65536)
            up = socket.create_connection(self.target)
            self._track(up)
        except OSError:
            down.close()
            return
        if len(first) == 16 and struct.unpack("!II", first[:8]) == (16, CANCEL_REQUEST_CODE):
            time.sleep(self.cancel_delay)
            self.cancels += 1
            try:
                up.sendall(first)
            except OSError:
                pass
            self._pipe(up, down)  # PostgreSQL closes it once it has signalled the backend
            return
        threading.Thread(target=self._pipe, args=(up, down), daemon=True).start()
        self._pipe(down, up, first, slow=True)

    def _pipe(self, src, dst, first=b"", slow=False):
        data = first
        try:
            while True:
                if data:
                    if slow and self.write_delay:
                        time.sleep(self.write_delay)
                    dst.sendall(data)
                data = src.recv(65536)
                if not data:
                    break
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
