"""A FUSE filesystem that forgets unsynced data: power cuts for crash-consistency tests.

A mount M shows a backing folder B, like a disk with a volatile write cache in front of it (the
idea of LazyFS, rebuilt small in Python on mfusepy and libfuse 3):

- File data written with write() or truncate() stays in the daemon's memory, per backing inode,
  and reaches B only when that file is fsync'ed or fdatasync'ed (through any handle on it: a
  read-only one too; the kernel turns O_SYNC and O_DSYNC writes and msync into fsyncs), or on
  :meth:`LazyMount.sync_all`. Everything read through M sees the cached data (read, size and
  mtime in stat, mmap). The cache is keyed by the backing inode, so it follows a file across
  renames and hard links; a file whose last name is gone and which nobody holds open is
  forgotten with its cache.
- Metadata goes straight to B and is durable at once: create, mkdir, rename, unlink, rmdir,
  link, symlink, chmod, chown, utimens. fsync on a folder is therefore a no-op (counted).
- :meth:`LazyMount.cut_power` drops every unsynced byte and makes the daemon refuse every later
  request with EIO (so nothing, not even the kernel's write-back at unmount, reaches B after
  the cut), then unmounts. B then holds what a power cut at that instant leaves, under this
  model. :meth:`LazyMount.arm` makes the daemon cut by itself right after the k-th request of
  a kind (the k-th rename, say): narrow windows (between a rename and an fsync) are hit at
  will, not by luck of timing. :meth:`LazyMount.remount` starts a fresh daemon on the same
  folders ("the next boot").

Limits of the model (what it cannot show):

- Renames, unlinks and new names are never rolled back: a rename whose folder was not fsync'ed
  survives the cut here, though a real filesystem may lose it. Missing directory fsyncs are not
  detected.
- No torn or reordered writes: the unsynced data of a file is lost whole, never in part, never
  as garbage, and an fsync is atomic (a cut waits for the request in progress to finish).
- sync(2) and syncfs(2) do not reach a FUSE daemon: only fsync/fdatasync of a file (or msync)
  makes data durable here. B is not fsync'ed itself: its page cache stands for the platter.
- fallocate, copy_file_range, xattrs and renameat2 flags are not modelled (the kernel falls back
  or refuses); truncate of a file that is open but has no name left is refused (EBADF).
- POSIX locks are left to the kernel (local to this machine: right for one board, where every
  client runs on the same kernel).
- Unsynced data lives in the daemon's memory, in 4 KiB pages: meant for test-sized files. A
  clean unmount (and a controller that dies) syncs everything, as a clean shutdown would.

The daemon runs in its own process (``python lazyfs.py serve B M --control-fd N``), so the test
process and the program under test are both ordinary clients. It speaks JSON lines over a
socket pair: ``{"op": "cut" | "sync" | "stats" | "arm", ...}``, answered with the counters of
:data:`COUNTERS`. The kernel's page cache is kept for reads, but the writeback cache is turned
off and files are not opened direct_io: every write() reaches the daemon before it returns, and
shared writable mmap (SQLite's WAL index) works.

    with LazyMount(backing, mountpoint) as fs:
        ...  # use mountpoint
        figures = fs.cut_power()
        fs.remount()

:func:`available` says why it cannot run here (None when it can); tests skip with that reason.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import errno
import functools
import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

PAGE = 4096
COUNTERS = (
    "writes",  # write requests that reached the daemon
    "bytes_written",  # bytes they carried (into the volatile cache)
    "truncates",
    "fsyncs",  # fsync/fdatasync of files
    "fsyncdirs",
    "bytes_synced",  # bytes moved from the cache to the backing folder
    "bytes_discarded",  # bytes dropped at the power cut
    "files_discarded",  # files that had unsynced data at the cut
    "refused",  # requests refused with EIO after the cut
    "dirty_bytes",  # unsynced bytes now (at the moment of the question)
    "cut",  # 1 once the power is off
    "armed_cut",  # 1 when the cut came from arm() (right after the chosen request)
)
FUSE_CAP_WRITEBACK_CACHE = 1 << 16
_BACKING_FLAGS = os.O_RDWR | os.O_CLOEXEC  # the daemon's own handles: never O_APPEND/O_TRUNC

Key = tuple[int, int]  # (st_dev, st_ino) of a backing file
P = ParamSpec("P")
R = TypeVar("R")


class _Volatile:
    """The unsynced state of one backing file: dirty pages, logical size, and ``floor``, the
    size below which bytes not held in a page still come from the backing file (a truncation
    lowers it; anything at or above it that no page holds reads as zeros)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        st = os.fstat(fd)
        self.size = self.floor = st.st_size
        self.mtime_ns = st.st_mtime_ns
        self.pages: dict[int, bytearray] = {}

    def dirty(self) -> int:
        """Return the unsynced bytes (whole pages, clipped to the size)."""
        return sum(max(0, min(PAGE, self.size - i * PAGE)) for i in self.pages)

    def _stored(self, offset: int, length: int) -> bytes:
        """Bytes at ``offset`` as the backing file holds them below ``floor``, zeros above."""
        valid = max(0, min(length, self.floor - offset))
        chunk = os.pread(self.fd, valid, offset) if valid else b""
        return chunk + bytes(length - len(chunk))

    def _page(self, index: int) -> bytearray:
        page = self.pages.get(index)
        if page is None:
            page = self.pages[index] = bytearray(self._stored(index * PAGE, PAGE))
        return page

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        out = bytearray()
        while offset < end:
            index, skip = divmod(offset, PAGE)
            take = min(PAGE - skip, end - offset)
            page = self.pages.get(index)
            out += page[skip : skip + take] if page is not None else self._stored(offset, take)
            offset += take
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        position = offset
        while view:
            index, skip = divmod(position, PAGE)
            take = min(PAGE - skip, len(view))
            if take == PAGE:  # a whole page: nothing of the old one is needed
                self.pages[index] = bytearray(view[:PAGE])
            else:
                self._page(index)[skip : skip + take] = view[:take]
            view = view[take:]
            position += take
        self.size = max(self.size, offset + len(data))
        self.mtime_ns = time.time_ns()

    def truncate(self, length: int) -> None:
        if length < self.size:
            for index in [i for i in self.pages if i * PAGE >= length]:
                del self.pages[index]
            index, skip = divmod(length, PAGE)
            if skip:  # keep the head of the last page, zero its tail (it may grow again)
                page = self._page(index)
                page[skip:] = bytes(PAGE - skip)
            self.floor = min(self.floor, length)
        self.size = length
        self.mtime_ns = time.time_ns()

    def flush(self) -> int:
        """Write the cached state to the backing file; return the bytes written."""
        if os.fstat(self.fd).st_size > self.floor:
            os.ftruncate(self.fd, self.floor)
        written = 0
        for index in sorted(self.pages):
            data = self.pages[index][: max(0, min(PAGE, self.size - index * PAGE))]
            os.pwrite(self.fd, data, index * PAGE)
            written += len(data)
        os.ftruncate(self.fd, self.size)
        st = os.fstat(self.fd)
        os.utime(self.fd, ns=(st.st_atime_ns, self.mtime_ns))
        self.pages.clear()
        self.floor = self.size
        return written


def _serialized(
    method: Callable[Concatenate[LazyOps, P], R],
) -> Callable[Concatenate[LazyOps, P], R]:
    """Run a FUSE request under the daemon's lock; refuse it once the power is off."""

    @functools.wraps(method)
    def run(self: LazyOps, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.mutex:
            if self.dead:
                self.counts["refused"] += 1
                raise OSError(errno.EIO, "the power is off")
            result = method(self, *args, **kwargs)
            if self.armed is not None and self.armed[0] == method.__name__:
                left = self.armed[1] - 1
                self.armed = (method.__name__, left) if left else None
                if not left:  # it reached the disk and the client will hear so; then darkness
                    self._cut()
                    self.counts["armed_cut"] = 1
            return result

    return run


class LazyOps:
    """The FUSE operations (mfusepy calls every method named like a libfuse operation)."""

    use_ns = True  # times in nanoseconds (mfusepy)

    def __init__(self, backing: Path, control: socket.socket) -> None:
        self.root = str(backing.resolve())
        self.control = control
        self.mutex = threading.Lock()
        self.dead = False
        self.cache: dict[Key, _Volatile] = {}
        self.handles: dict[int, Key] = {}  # FUSE file handle (a backing fd) -> inode
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.conn_want = 0
        self.armed: tuple[str, int] | None = None  # cut after this many more of that request

    # -- the control channel --------------------------------------------------------------

    def init_with_config(self, conn: Any, config: Any) -> None:
        if conn is not None:
            conn.want &= ~FUSE_CAP_WRITEBACK_CACHE  # every write() must reach us at once
            self.conn_want = int(conn.want)
        if config is not None:
            config.direct_io = 0  # page cache for reads, so MAP_SHARED works
            config.kernel_cache = 0
        threading.Thread(target=self._control_loop, name="control", daemon=True).start()

    def destroy(self, path: str) -> None:
        with self.mutex:  # a clean unmount is a clean shutdown: everything reaches the disk
            if not self.dead:
                self._sync_all()

    def _control_loop(self) -> None:
        reader = self.control.makefile("rb")
        self._answer({"ready": True, "want": self.conn_want, "pid": os.getpid()})
        for line in reader:
            request = json.loads(line)
            op = request.get("op")
            with self.mutex:
                if op == "cut":
                    self._cut()
                elif op == "sync" and not self.dead:
                    self._sync_all()
                elif op == "arm" and not self.dead:
                    self.armed = (str(request["request"]), int(request["count"]))
                answer = self._figures()
            self._answer(answer)
        # The controller is gone (its process died): do not stay mounted behind its back.
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

    def _cut(self) -> None:
        if self.dead:
            return
        self.dead = True
        self.armed = None
        self.counts["cut"] = 1
        self.counts["files_discarded"] += len(self.cache)  # each one written or truncated
        for volatile in self.cache.values():
            self.counts["bytes_discarded"] += volatile.dirty()
            os.close(volatile.fd)
        self.cache.clear()

    def _answer(self, message: dict[str, Any]) -> None:
        self.control.sendall(json.dumps(message).encode() + b"\n")

    def _figures(self) -> dict[str, Any]:
        figures = dict(self.counts)
        figures["dirty_bytes"] = sum(v.dirty() for v in self.cache.values())
        return figures

    # -- the cache ------------------------------------------------------------------------

    def _path(self, path: str | None) -> str:
        if path is None:
            raise OSError(errno.EBADF, "no path for a file that has no name left")
        return self.root + path

    def _volatile(self, fh: int) -> _Volatile:
        key = self.handles[fh]
        volatile = self.cache.get(key)
        if volatile is None:
            # An own handle on the inode: it stays allocated (its number cannot be reused)
            # for as long as it has a cache, even when its last name goes.
            fd = os.open(f"/proc/self/fd/{fh}", _BACKING_FLAGS)
            volatile = self.cache[key] = _Volatile(fd)
        return volatile

    def _flush(self, key: Key) -> None:
        volatile = self.cache.pop(key, None)
        if volatile is not None:
            try:
                self.counts["bytes_synced"] += volatile.flush()
            finally:
                os.close(volatile.fd)

    def _sync_all(self) -> None:
        for key in list(self.cache):
            self._flush(key)

    def _forget_if_gone(self, key: Key | None) -> None:
        """Drop the cache of a file that lost its last name and is not open any more."""
        volatile = self.cache.get(key) if key is not None else None
        if key is None or volatile is None or key in self.handles.values():
            return
        if os.fstat(volatile.fd).st_nlink == 0:
            os.close(self.cache.pop(key).fd)

    def _key_of(self, path: str) -> Key | None:
        try:
            st = os.lstat(self._path(path))
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None

    def _adopt(self, fd: int, flags: int) -> int:
        st = os.fstat(fd)
        self.handles[fd] = (st.st_dev, st.st_ino)
        if flags & os.O_TRUNC:
            self._volatile(fd).truncate(0)
            self.counts["truncates"] += 1
        return fd

    # -- files ----------------------------------------------------------------------------

    @_serialized
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        st = os.fstat(fh) if fh is not None and fh in self.handles else os.lstat(self._path(path))
        attrs = {k: getattr(st, k) for k in dir(st) if k.startswith("st_") and "time" not in k}
        for name in ("st_atime", "st_mtime", "st_ctime"):
            attrs[name] = getattr(st, name + "_ns")
        volatile = self.cache.get((st.st_dev, st.st_ino))
        if volatile is not None:
            attrs["st_size"] = volatile.size
            attrs["st_blocks"] = (volatile.size + 511) // 512
            attrs["st_mtime"] = attrs["st_ctime"] = volatile.mtime_ns
        return attrs

    @_serialized
    def open(self, path: str, flags: int) -> int:
        try:
            fd = os.open(self._path(path), _BACKING_FLAGS)
        except PermissionError:
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise
            fd = os.open(self._path(path), os.O_RDONLY | os.O_CLOEXEC)
        return self._adopt(fd, flags)

    @_serialized
    def create(self, path: str, mode: int, flags: int) -> int:
        fd = os.open(self._path(path), _BACKING_FLAGS | os.O_CREAT | (flags & os.O_EXCL), mode)
        return self._adopt(fd, flags)

    @_serialized
    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        volatile = self.cache.get(self.handles[fh])
        return volatile.read(offset, size) if volatile else os.pread(fh, size, offset)

    @_serialized
    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        self._volatile(fh).write(offset, data)
        self.counts["writes"] += 1
        self.counts["bytes_written"] += len(data)
        return len(data)

    @_serialized
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        fd = fh if fh is not None and fh in self.handles else None
        if fd is None:
            fd = os.open(self._path(path), _BACKING_FLAGS)
            try:
                self._adopt(fd, 0)
                self._volatile(fd).truncate(length)
            finally:
                del self.handles[fd]
                os.close(fd)
        else:
            self._volatile(fd).truncate(length)
        self.counts["truncates"] += 1
        return 0

    @_serialized
    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        self.counts["fsyncs"] += 1
        self._flush(self.handles[fh])
        return 0

    @_serialized
    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        self.counts["fsyncdirs"] += 1  # metadata is durable at once in this model
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0  # close() makes nothing durable

    def release(self, path: str | None, fh: int) -> int:
        with self.mutex:
            key = self.handles.pop(fh, None)
            os.close(fh)
            if not self.dead:
                self._forget_if_gone(key)
        return 0

    # -- names and metadata (straight to the backing folder) ------------------------------

    @_serialized
    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._path(path))]

    @_serialized
    def unlink(self, path: str) -> int:
        key = self._key_of(path)
        os.unlink(self._path(path))
        self._forget_if_gone(key)
        return 0

    @_serialized
    def rename(self, old: str, new: str) -> int:
        replaced = self._key_of(new)
        os.rename(self._path(old), self._path(new))
        self._forget_if_gone(replaced)
        return 0

    @_serialized
    def link(self, target: str, source: str) -> int:
        os.link(self._path(source), self._path(target))
        return 0

    @_serialized
    def symlink(self, target: str, source: str) -> int:
        os.symlink(source, self._path(target))
        return 0

    @_serialized
    def readlink(self, path: str) -> str:
        return os.readlink(self._path(path))

    @_serialized
    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._path(path), mode)
        return 0

    @_serialized
    def rmdir(self, path: str) -> int:
        os.rmdir(self._path(path))
        return 0

    @_serialized
    def mknod(self, path: str, mode: int, dev: int) -> int:
        os.mknod(self._path(path), mode, dev)
        return 0

    @_serialized
    def chmod(self, path: str | None, mode: int) -> int:
        os.chmod(self._path(path), mode)
        return 0

    @_serialized
    def chown(self, path: str | None, uid: int, gid: int) -> int:
        os.chown(self._path(path), uid, gid, follow_symlinks=False)
        return 0

    @_serialized
    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._path(path))
            return 0
        os.utime(self._path(path), ns=times)
        key = self._key_of(path or "")
        if key in self.cache:
            self.cache[key].mtime_ns = times[1]
        return 0

    @_serialized
    def access(self, path: str, amode: int) -> int:
        if not os.access(self._path(path), amode):
            raise OSError(errno.EACCES, path)
        return 0

    @_serialized
    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self._path(path))
        names = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree")
        return {name: getattr(sv, name) for name in (*names, "f_favail", "f_flag", "f_namemax")}


def _serve(backing: Path, mountpoint: Path, control_fd: int) -> int:
    """The daemon: mount ``backing`` at ``mountpoint`` until unmounted."""
    logging.basicConfig(level=logging.WARNING, format="lazyfs: %(levelname)s %(message)s")
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # never libfuse 2, when both are here
    mfusepy = importlib.import_module("mfusepy")
    ops = LazyOps(backing, socket.socket(fileno=control_fd))
    mfusepy.FUSE(
        ops, str(mountpoint), foreground=True, nothreads=True, fsname="lazyfs", hard_remove=True
    )
    return 0


# -- the controller (in the test process) ---------------------------------------------------


class LazyMountError(RuntimeError):
    """The daemon could not mount, answer or unmount."""


class LazyMount:
    """A lazy mount of ``backing`` at ``mountpoint``, driven from this process.

    :attr:`totals` adds up the counters of every daemon this object started (each cut or clean
    unmount adds the figures of the daemon that ends).
    """

    def __init__(self, backing: Path, mountpoint: Path, *, timeout: float = 20.0) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self.timeout = timeout
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.mounts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self._cut = False
        handle, name = tempfile.mkstemp(prefix="lazyfs-", suffix=".log")
        os.close(handle)
        self._log = Path(name)
        self._lock = threading.Lock()

    def __enter__(self) -> LazyMount:
        self.mount()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unmount()
        self._log.unlink(missing_ok=True)

    @property
    def mounted(self) -> bool:
        return self._proc is not None

    def mount(self) -> None:
        """Start a daemon and wait until the mount answers. Raises LazyMountError."""
        if self._proc is not None:
            raise LazyMountError("already mounted")
        if _is_mount(self.mountpoint):
            raise LazyMountError(f"something is mounted at {self.mountpoint} already")
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        ours, theirs = socket.socketpair()
        command = [sys.executable, str(Path(__file__).resolve()), "serve"]
        command += [str(self.backing), str(self.mountpoint), "--control-fd", str(theirs.fileno())]
        with open(self._log, "ab") as err:
            self._proc = subprocess.Popen(
                command,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env={**os.environ, "FUSE_LIBRARY_NAME": "fuse3"},
            )
        theirs.close()
        ours.settimeout(self.timeout)
        self._sock, self._reader, self._cut = ours, ours.makefile("rb"), False
        try:
            hello = self._receive()
        except LazyMountError:
            self._reap(force=True)
            raise
        if not hello.get("ready") or not _is_mount(self.mountpoint):
            self._reap(force=True)
            raise LazyMountError(f"mount did not come up: {hello}")
        self.mounts += 1

    def stats(self) -> dict[str, int]:
        """Return the running daemon's counters."""
        return self._ask("stats")

    def sync_all(self) -> dict[str, int]:
        """Make every cached byte durable (as sync(2) would on a real disk)."""
        return self._ask("sync")

    def arm(self, request: str, count: int) -> None:
        """Cut the power by itself right after the ``count``-th ``request`` from now on (a FUSE
        operation: "rename", "fsync", "write", "create", "unlink", ...): that request reaches
        the disk and its caller hears so, nothing after it does. See :meth:`stats`["cut"]."""
        self._ask("arm", request=request, count=count)

    def cut_power(self, *, unmount: bool = True) -> dict[str, int]:
        """Drop every unsynced byte and refuse every later request, then (with ``unmount``)
        unmount. Returns the daemon's counters at the cut."""
        figures = self._ask("cut")
        self._cut = True
        if unmount:
            self.unmount()
        return figures

    def unmount(self) -> None:
        """Unmount; without a cut before, this is a clean shutdown (everything synced)."""
        if self._proc is None:
            return
        with contextlib.suppress(LazyMountError, OSError):
            self._add(self._ask("stats" if self._cut else "sync"))
        detached = False
        for attempt in range(40):  # a client still closing its files: wait a little
            detached = attempt == 39
            if _umount(self.mountpoint, lazy=detached) or not _is_mount(self.mountpoint):
                break
            time.sleep(0.05)
        # After a lazy detach the daemon would live on while clients hold files open; they
        # get ENOTCONN from now on (what was synced above stays).
        self._reap(force=detached)

    def remount(self) -> None:
        """Unmount (if mounted) and mount again on the same folders: the next boot."""
        self.unmount()
        self.mount()

    def log_text(self) -> str:
        """Return what the daemons wrote to stderr (for failure messages)."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def _add(self, figures: dict[str, int]) -> None:
        for name in COUNTERS:
            if name != "dirty_bytes":
                self.totals[name] += int(figures.get(name, 0))

    def _ask(self, op: str, **fields: object) -> dict[str, int]:
        with self._lock:
            if self._sock is None:
                raise LazyMountError("not mounted")
            self._sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            return {k: int(v) for k, v in self._receive().items()}

    def _receive(self) -> dict[str, Any]:
        try:
            line = self._reader.readline()
        except OSError as exc:
            raise LazyMountError(f"the daemon did not answer: {exc}; {self.log_text()}") from exc
        if not line:
            raise LazyMountError(f"the daemon ended: {self.log_text().strip()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _reap(self, *, force: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.wait(timeout=0.5 if force else self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if _is_mount(self.mountpoint):
                _umount(self.mountpoint, lazy=True)
        if self._sock is not None:
            self._reader.close()
            self._sock.close()
            self._sock = self._reader = None


def _is_mount(mountpoint: Path) -> bool:
    """True when something is mounted at ``mountpoint`` (without asking the filesystem, which
    refuses every request after a cut)."""
    where = os.path.abspath(mountpoint)
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 1 and _unescape(fields[1]) == where:
                return True
    return False


def _unescape(field: str) -> str:
    """Undo the octal escapes of /proc/self/mounts (\\040 for a space, ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _umount(mountpoint: Path, *, lazy: bool) -> bool:
    if shutil.which("fusermount3"):
        command = ["fusermount3", "-u", *(["-z"] if lazy else []), str(mountpoint)]
    else:
        command = ["umount", *(["-l"] if lazy else []), str(mountpoint)]
    done = subprocess.run(command, check=False, capture_output=True, timeout=30)
    return done.returncode == 0


@functools.cache
def available() -> str | None:
    """Return None when lazy mounts work here, else why not (for pytest.skip)."""
    if not sys.platform.startswith("linux"):
        return "lazyfs needs Linux FUSE"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (a container started without --device /dev/fuse?)"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return f"/dev/fuse cannot be opened: {exc}"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy is not installed (pip install mfusepy)"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse 3 is missing (apt-get install libfuse3-3 fuse3)"
    if os.geteuid() != 0 and not shutil.which("fusermount3"):
        return "fusermount3 is missing (apt-get install fuse3)"
    with tempfile.TemporaryDirectory(prefix="lazyfs-probe-") as scratch:
        backing, mountpoint = Path(scratch, "b"), Path(scratch, "m")
        try:
            with LazyMount(backing, mountpoint, timeout=10) as fs:
                (mountpoint / "probe").write_bytes(b"probe")
                fs.cut_power()
        except (LazyMountError, OSError) as exc:
            return f"a FUSE mount is not permitted here: {exc}"
    return None  # whether it behaves is for the tests to say, not a reason to skip them


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[0] == "serve" and argv[3] == "--control-fd":
        return _serve(Path(argv[1]), Path(argv[2]), int(argv[4]))
    print("usage: lazyfs.py serve BACKING MOUNTPOINT --control-fd FD", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
