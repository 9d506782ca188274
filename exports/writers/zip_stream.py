"""A zip written front to back whose members are deflated as they come, dated, with room to fill in later.

What ``zipfile`` does not offer and the streaming xlsx needs: a member may begin with *stored* bytes
(a deflate "stored" block, byte for byte) that are rewritten, same length, when the member ends, so a
sheet can say at its top how many rows it has (``<dimension>``) after they were streamed; the deflate
runs through zlib-ng when the ``zlib-ng`` package is installed (faster than the stdlib's zlib at the
same level, and a little smaller), else the stdlib, and may run on a second thread while the caller
makes the next data (zlib releases the GIL). Members are dated ``date_time`` (the build time), not
1980-01-01.

A member's local header carries zip64 sizes (as ``zipfile``'s ``force_zip64``), so a member may pass
4 GiB; the central directory and its end records follow the zip specification (APPNOTE 6.3) and
``zipfile``'s own choices.
"""
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

try:  # optional: the same deflate format, faster
    from zlib_ng import zlib_ng as fast_zlib
except ImportError:  # pragma: no cover - the stdlib is the fallback
    fast_zlib = None

__all__ = ["DEFLATERS", "DEFAULT_DEFLATER", "ZipStream", "crc32_combine"]

#: The deflate implementations available here, by name; the default is the fastest.
DEFLATERS = {"zlib": zlib, **({"zlib-ng": fast_zlib} if fast_zlib is not None else {})}
DEFAULT_DEFLATER = "zlib-ng" if fast_zlib is not None else "zlib"
#: Each deflate's default level: files about as small as the stdlib's zlib makes at its default (6).
#: Measured on 100,000 demo rows of xlsx: zlib 6, 4.52 MB; zlib-ng 5, 4.64 MB in 2.2x less CPU time
#: (zlib-ng 6: 4.37 MB in 1.6x less; 4: 4.94 MB).
DEFAULT_LEVELS = {"zlib": 6, "zlib-ng": 5}

ZIP64_LIMIT = 0xFFFFFFFF
ZIP_DEFLATED = 8
UTF8_NAMES = 0x800
LOCAL_HEADER = struct.Struct("<4sHHHHHLLLHH")
CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
END_RECORD = struct.Struct("<4sHHHHLLH")
ZIP64_END_RECORD = struct.Struct("<4sQHHLLQQQQ")
ZIP64_LOCATOR = struct.Struct("<4sLQL")
MAX_STORED_BLOCK = 0xFFFF


class ZipStream:
    """A zip file at ``path``, its members written one after the other.

    ``date_time``: the members' date (a naive datetime, local time as zip keeps it). ``compresslevel``:
    deflate's level (None: the deflater's ``DEFAULT_LEVELS``). ``deflater``: a name of ``DEFLATERS`` (default: the fastest
    installed). ``threaded``: deflate on a second thread while the caller makes the next data (off by
    default: measured with ``benchmark_exports --writer``, it costs up to 10 % more CPU time, and saves
    wall time only where a core is idle, which a machine running a worker per core seldom has).
    """

    def __init__(self, path, date_time, compresslevel=None, deflater=None, threaded=False):
        deflater = deflater or DEFAULT_DEFLATER
        self.deflate = DEFLATERS[deflater]
        self.compresslevel = DEFAULT_LEVELS[deflater] if compresslevel is None else compresslevel
        self.dos_time, self.dos_date = dos_date_time(date_time)
        self.entries = []  # (name bytes, flags, crc, compressed size, size, offset)
        self.member = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="deflate") if threaded else None
        self._file = open(path, "wb")

    def writestr(self, name, data):
        """A whole member from ``data`` (str or bytes), deflated."""
        member = self.open(name)
        member.write(data.encode() if isinstance(data, str) else data)
        member.close()

    def open(self, name):
        """A new member, open for writing (``ZipMember``); the previous one must be closed."""
        if self.member is not None:
            raise ValueError(f"{self.member.name!r} is still open")
        self.member = ZipMember(self, name)
        return self.member

    def close(self):
        """Write the central directory and close the file."""
        if self._file.closed:
            return
        try:
            if self.member is not None:
                raise ValueError(f"{self.member.name!r} is still open")
            self._write_directory()
        finally:
            self.abort()

    def abort(self):
        """Close the file as it is (not a valid zip); quiet, for errors."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._file.close()

    def _write_directory(self):
        f = self._file
        start = f.tell()
        for name, flags, crc, compressed, size, offset in self.entries:
            extra = [v for v in (size, compressed, offset) if v >= ZIP64_LIMIT]
            zip64 = struct.pack(f"<HH{len(extra)}Q", 1, 8 * len(extra), *extra) if extra else b""
            f.write(CENTRAL_HEADER.pack(
                b"PK\x01\x02", 45, 3, 45 if extra else 20, 0, flags, ZIP_DEFLATED,
                self.dos_time, self.dos_date, crc, min(compressed, ZIP64_LIMIT), min(size, ZIP64_LIMIT),
                len(name), len(zip64), 0, 0, 0, 0o644 << 16, min(offset, ZIP64_LIMIT)))
            f.write(name)
            f.write(zip64)
        end = f.tell()
        count, length = len(self.entries), end - start
        if count > 0xFFFF or length > ZIP64_LIMIT or start > ZIP64_LIMIT:
            f.write(ZIP64_END_RECORD.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, length, start))
            f.write(ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, end, 1))
        f.write(END_RECORD.pack(b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                                min(length, ZIP64_LIMIT), min(start, ZIP64_LIMIT), 0))


class ZipMember:
    """One member being written: optional stored bytes first (``write_stored``), then deflated data
    (``write``); ``close`` finishes it. Stored bytes may be rewritten, same length, until then."""

    def __init__(self, zip_stream, name):
        self.zip = zip_stream
        self.name = name
        self.encoded_name = name.encode()
        self.flags = 0 if name.isascii() else UTF8_NAMES
        self.stored = []  # [file offset of the bytes, bytes]: the stored blocks
        self.size = 0  # uncompressed bytes after the stored ones
        self.crc = 0  # of those bytes
        self._deflater = zip_stream.deflate.compressobj(zip_stream.compresslevel, zlib.DEFLATED, -15)
        self._pending = None
        f = zip_stream._file
        self.offset = f.tell()
        f.write(LOCAL_HEADER.pack(b"PK\x03\x04", 45, self.flags, ZIP_DEFLATED, zip_stream.dos_time,
                                  zip_stream.dos_date, 0, ZIP64_LIMIT, ZIP64_LIMIT, len(self.encoded_name), 20))
        f.write(self.encoded_name)
        self._zip64_at = f.tell() + 4
        f.write(struct.pack("<HHQQ", 1, 16, 0, 0))
        self.data_start = f.tell()

    def write_stored(self, data):
        """Bytes kept as they are, before any ``write``; returns a handle for ``rewrite_stored``."""
        if self.size or self._pending:
            raise ValueError("stored bytes come before the deflated ones")
        f = self.zip._file
        for start in range(0, len(data), MAX_STORED_BLOCK):
            block = data[start:start + MAX_STORED_BLOCK]
            f.write(struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF))  # a non-final stored block
            self.stored.append([f.tell(), block])
            f.write(block)
        return len(self.stored)

    def rewrite_stored(self, data):
        """Replace all the stored bytes by ``data``, of the same length (done at ``close``)."""
        old = b"".join(block for _, block in self.stored)
        if len(data) != len(old):
            raise ValueError(f"rewritten stored bytes must keep their length ({len(old)}), not {len(data)}")
        start = 0
        for entry in self.stored:
            entry[1] = data[start:start + len(entry[1])]
            start += len(entry[1])

    def write(self, data):
        """Deflate ``data`` (bytes) into the member, on the deflate thread if there is one."""
        if not data:
            return
        executor = self.zip._executor
        if executor is None:
            self._deflate(data)
            return
        if self._pending is not None:
            self._pending.result()  # one chunk at a time in flight: memory stays flat
        self._pending = executor.submit(self._deflate, data)

    def _deflate(self, data):
        self.crc = self.zip.deflate.crc32(data, self.crc)
        self.size += len(data)
        self.zip._file.write(self._deflater.compress(data))

    def close(self):
        """Finish the deflate stream, rewrite the stored bytes and the sizes, and end the member."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()
        zip_stream, f = self.zip, self.zip._file
        f.write(self._deflater.flush())
        end = f.tell()
        head = b"".join(block for _, block in self.stored)
        for at, block in self.stored:
            f.seek(at)
            f.write(block)
        crc = crc32_combine(zlib.crc32(head), self.crc, self.size) if head else self.crc
        size, compressed = len(head) + self.size, end - self.data_start
        f.seek(self.offset + 14)
        f.write(struct.pack("<L", crc))
        f.seek(self._zip64_at)
        f.write(struct.pack("<QQ", size, compressed))
        f.seek(end)
        zip_stream.entries.append((self.encoded_name, self.flags, crc, compressed, size, self.offset))
        zip_stream.member = None


def dos_date_time(value):
    """(time, date) as zip keeps them: two 16-bit numbers, seconds halved, years 1980–2107."""
    year = min(max(value.year, 1980), 2107)
    return ((value.hour << 11) | (value.minute << 5) | (value.second // 2),
            ((year - 1980) << 9) | (value.month << 5) | value.day)


def crc32_combine(crc1, crc2, length2):
    """The CRC-32 of A + B from crc1 = crc32(A), crc2 = crc32(B) and len(B) (zlib's algorithm)."""
    if fast_zlib is not None:
        return fast_zlib.crc32_combine(crc1, crc2, length2)
    return _crc32_combine(crc1, crc2, length2)


def _gf2_times(matrix, vector):
    total = 0
    i = 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix):
    return [_gf2_times(matrix, row) for row in matrix]


def _crc32_combine(crc1, crc2, length2):
    """zlib's crc32_combine in Python: crc1 advanced over length2 zero bytes, then xor crc2."""
    if length2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << i for i in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # the first pass: one zero byte
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2
