"""Mirrors modules/fifo_lock.py of AUTOMATIC1111 v1.10.1: a first-in-first-out, NOT re-entrant lock."""

import collections
import threading


class FIFOLock:
    def __init__(self):
        self._lock = threading.Lock()
        self._inner_lock = threading.Lock()
        self._pending_threads = collections.deque()

    def acquire(self, blocking=True):
        with self._inner_lock:
            if self._lock.acquire(False):
                return True
            if not blocking:
                return False
            release_event = threading.Event()
            self._pending_threads.append(release_event)
        release_event.wait()
        return self._lock.acquire()

    def release(self):
        with self._inner_lock:
            if self._pending_threads:
                self._pending_threads.popleft().set()
            self._lock.release()

    def locked(self):  # stand-in only, for assertions
        return self._lock.locked()

    __enter__ = acquire

    def __exit__(self, t, v, tb):
        self.release()
