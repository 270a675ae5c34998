"""A table's row blocks on their way from the backup file to COPY: read, checked and (format 1)
parsed on a thread of their own while the restore's session sends the blocks before
(devkit/backup/load.py)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

from devkit.backup.codec import RowParser
from devkit.backup.fileformat import READ_SIZE, CorruptBackup, TableStream


class RowBlocks:
    """A table's row blocks as COPY takes them, each with its number of rows.

    A thread reads, checks and (JSON rows, format 1) parses the next blocks (decompression and
    hashing release the GIL) while the session sends the previous ones. COPY text (format 2) goes
    on as it is, whole blocks; parsed rows go in pieces: one piece waits in between at most, and
    after a long line nothing more is read until its row has been sent (the row is then in
    memory twice, as its values and as the text psycopg sends: its line is let go once parsed,
    by the file's reader too).
    """

    def __init__(self, stream: TableStream, parser: RowParser | None, where: str) -> None:
        self.where = where
        self.parser = parser
        self.count = 0
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._sent = 0  # pieces written to COPY, counted under _written
        self._written = threading.Condition()
        self._thread = threading.Thread(
            target=self._produce, args=(stream.blocks,), name="restore-reader", daemon=True
        )
        self._thread.start()

    def _produce(self, blocks: Iterator[bytes]) -> None:
        put = 0
        try:
            for block in blocks:
                if self._stop.is_set():
                    return
                if self.parser is None:  # COPY text, as it is
                    long = len(block) > 2 * READ_SIZE  # a long line in it
                    self._queue.put((block, block.count(b"\n")))
                    put += 1
                    del block
                    if long:
                        self._wait_sent(put)
                    continue
                pieces = list(_pieces(block))
                del block  # not held while the parsed rows wait to be sent
                while pieces:
                    piece = pieces.pop(0)
                    long = len(piece) > PIECE
                    try:
                        rows = self.parser.rows(piece)
                    except ValueError as exc:
                        raise CorruptBackup(
                            f"{self.where}: a row is damaged ({exc})", "use another backup"
                        ) from None
                    del piece
                    self._queue.put((rows, len(rows)))
                    put += 1
                    del rows
                    if long:
                        self._wait_sent(put)
            self._queue.put(None)
        except BaseException as exc:  # raised again in the thread that reads
            self._queue.put(exc)

    def _wait_sent(self, put: int) -> None:
        """After a long line: nothing more read until everything put has been sent."""
        with self._written:
            while self._sent < put and not self._stop.is_set():
                self._written.wait(0.1)

    def __iter__(self) -> Iterator[tuple[bytes | list, int]]:
        """(a block of COPY text or a list of rows, its number of rows)"""
        while (item := self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            self.count += item[1]
            yield item
            del item
            with self._written:
                self._sent += 1
                self._written.notify()

    def close(self) -> None:
        """Stop the reading thread (after a failure, before the file is closed)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)


# Row lines parsed at once: their values as Python objects take up to ~15 times the bytes of
# the lines (small integers, short strings), and a few such pieces wait in the queue.
PIECE = 1 << 18


def _pieces(block: bytes) -> Iterator[bytes]:
    """BLOCK's whole row lines in pieces of about PIECE bytes (a longer line is a piece)."""
    start = 0
    while start < len(block):
        end = block.find(b"\n", start + PIECE)
        end = len(block) if end < 0 else end + 1
        yield block[start:end]
        start = end
