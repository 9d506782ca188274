"""An xlsx built in parts: each part deflates its rows' sheet XML, the assembly copies the bytes.

A part (``XlsxPartWriter``) renders its rows exactly as ``StreamingXlsxWriter`` does (it is one, with
another output) into raw deflate *segments*: each from a fresh compressor, ended by a sync flush
(a byte boundary, no final block), so segments can be laid end to end in any deflate stream. A part
knows its first row's place in the export (``first_row``, counted when the rows were split), so it
starts a new segment where a sheet is full; each segment records its rows, its uncompressed size
and CRC-32, and its compressed length. Rows carry no ``r`` attribute, so nothing needs numbering.

The assembly (``assemble_xlsx``) groups the segments into sheets (a sheet is full at
``max_rows_per_sheet`` rows, header included, as in a whole build), and writes each sheet's zip
entry: the sheet's head, deflated; the segments' compressed bytes, copied; the tail with the final
block. The entry's CRC-32 is combined from the pieces' (``crc32_combine``, zlib's algorithm), so
no row is read again. The zip's headers (zip64 where a size or an offset needs it) and the
workbook's fixed parts are written around them. The file holds the same sheets, cells and values
as a whole build of the same rows.
"""
import struct
from dataclasses import dataclass
from datetime import datetime

from exports.writers.base import XLSX_MAX_ROWS
from exports.writers.xlsx_streaming import StreamingXlsxWriter
from exports.writers.zip_stream import DEFAULT_DEFLATER, DEFAULT_LEVELS, DEFLATERS, crc32_combine, dos_date_time

# Parts deflate as a whole build does: the fastest deflate here (zlib-ng when installed), at its level.
zlib = DEFLATERS[DEFAULT_DEFLATER]
DEFAULT_LEVEL = DEFAULT_LEVELS[DEFAULT_DEFLATER]

__all__ = ["Segment", "XlsxAssembler", "XlsxPartWriter", "assemble_xlsx", "crc32_combine", "sheets_of"]

COPY_BUFFER = 1 << 20


# --- a part ---

@dataclass(frozen=True)
class Segment:
    """A run of rows in one sheet, as raw deflate ending on a byte boundary: where, how long, its CRC."""

    rows: int
    size: int  # uncompressed bytes
    crc: int
    length: int  # compressed bytes

    def as_json(self):
        return {"rows": self.rows, "size": self.size, "crc": self.crc, "length": self.length}

    @classmethod
    def from_json(cls, data):
        return cls(int(data["rows"]), int(data["size"]), int(data["crc"]), int(data["length"]))


class _Deflating:
    """A file-like sink deflating into `file` as one segment; `end()` flushes it to a byte boundary."""

    def __init__(self, file, level):
        self._file = file
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
        self.size = self.crc = self.length = 0

    def write(self, data):
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        if out := self._deflate.compress(data):
            self._file.write(out)
            self.length += len(out)

    def end(self, mode=zlib.Z_SYNC_FLUSH):
        out = self._deflate.flush(mode)
        self._file.write(out)
        self.length += len(out)


def deflated(data, level, final=False):
    """`data` as a raw deflate segment of its own (with the final block if `final`)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    return deflate.compress(data) + deflate.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class XlsxPartWriter(StreamingXlsxWriter):
    """The sheet rows of one part of an xlsx export, as deflate segments in one file (see the module).

    ``first_row``: how many data rows of the export come before this part's first (0 for the first
    part), so that the part cuts a segment where the whole build would start a new sheet. After
    ``close()``, ``segments`` lists the file's segments in order (their bytes follow each other).
    """

    file_extension = ".xlsxpart"

    def __init__(self, path, headers, types, tz=None, name=None, first_row=0, max_rows_per_sheet=XLSX_MAX_ROWS,
                 compresslevel=None):
        self.first_row = first_row
        self.segments = []
        self._file = None
        super().__init__(path, headers, types, tz, name, max_rows_per_sheet=max_rows_per_sheet,
                         compresslevel=compresslevel)

    def _open(self, path, compresslevel, deflater=None, threaded=False):
        self._level = DEFAULT_LEVEL if compresslevel is None else compresslevel
        self._file = open(path, "wb")  # noqa: SIM115 (closed by _finish / _abort)
        data_rows = self.max_rows_per_sheet - 1
        self._begin_segment(data_rows - self.first_row % data_rows)

    def _begin_segment(self, room):
        self._member = _Deflating(self._file, self._level)
        self._room = self._segment_room = room
        self._sink = self._write_rows

    def _end_segment(self):
        member, self._member = self._member, None
        rows = self._segment_room - self._room
        if rows:
            member.end()
            self.segments.append(Segment(rows, member.size, member.crc, member.length))

    def _start_container(self):
        """The sheet is full where the whole build's would be: the next rows are a new segment."""
        self._end_segment()
        self._begin_segment(self.max_rows_per_sheet - 1)

    def _finish(self):
        self._end_segment()
        self._file.close()

    def _abort(self):
        if self._file is not None:
            self._file.close()


# --- the assembly ---

def sheets_of(segments, max_rows_per_sheet=XLSX_MAX_ROWS):
    """The segments grouped into sheets of at most ``max_rows_per_sheet`` rows, header included.

    A sheet takes segments in order while they fit; parts cut their segments where a whole build's
    sheets end, so the sheets are the whole build's. (Had rows been added or removed between the
    split and a part's build, a sheet may end early: never over the limit.) No rows: one empty sheet.
    """
    room = max_rows_per_sheet - 1
    sheets = [[]]
    filled = 0
    for segment in segments:
        if segment.rows > room:
            raise ValueError(f"A segment of {segment.rows} rows does not fit in a sheet of {room} rows")
        if filled + segment.rows > room:
            sheets.append([])
            filled = 0
        sheets[-1].append(segment)
        filled += segment.rows
    return sheets


class XlsxAssembler(StreamingXlsxWriter):
    """The xlsx file whose sheets are made of parts' segments: ``add_sheet`` each sheet, then ``close()``.

    The header, column widths, frozen pane, filters and the workbook's parts are StreamingXlsxWriter's own.
    """

    def __init__(self, path, headers, types, tz=None, name=None, max_rows_per_sheet=XLSX_MAX_ROWS, compresslevel=None,
                 when=None, zip64_from=0xFFFFFFFF):
        self._when, self._zip64_from = when, zip64_from
        super().__init__(path, headers, types, tz, name, max_rows_per_sheet=max_rows_per_sheet,
                         compresslevel=compresslevel)

    def _open(self, path, compresslevel, deflater=None, threaded=False):
        self._level = DEFAULT_LEVEL if compresslevel is None else compresslevel
        self._zip = RawZipWriter(path, when=self._when, level=self._level, zip64_from=self._zip64_from)
        self._room = 0  # rows come as segments only

    def add_sheet(self, segments, read):
        """Write the next sheet from `segments`; `read(segment)` gives a segment's compressed bytes in pieces."""
        self.sheet_count += 1
        rows = sum(segment.rows for segment in segments)
        head = self._sheet_head(self._dimension(rows + 1)).encode()
        tail = self._sheet_tail(rows + 1).encode()
        head_z, tail_z = deflated(head, self._level), deflated(tail, self._level, final=True)
        crc, size, length = zlib.crc32(head), len(head), len(head_z)
        for segment in segments:
            crc = crc32_combine(crc, segment.crc, segment.size)
            size += segment.size
            length += segment.length
        crc = crc32_combine(crc, zlib.crc32(tail), len(tail))

        def pieces():
            yield head_z
            for segment in segments:
                yield from read(segment)
            yield tail_z

        self._zip.write_deflated(f"xl/worksheets/sheet{self.sheet_count}.xml", pieces(), crc, size + len(tail),
                                 length + len(tail_z))
        self._sheet_rows.append(rows + 1)
        self.rows_written += rows

    def _finish(self):
        if not self.sheet_count:
            self.add_sheet([], None)
        super()._finish()

    def _abort(self):
        self._zip.abort()


def assemble_xlsx(path, headers, types, parts, open_part, tz=None, name=None, max_rows_per_sheet=XLSX_MAX_ROWS,
                  when=None, is_cancelled=None, progress=None, zip64_from=0xFFFFFFFF):
    """Write the xlsx at `path` from `parts`, in order: each a list of Segments; returns the rows.

    `open_part(index)` opens part `index`'s file (binary, read from the start); its segments follow
    each other in it. `is_cancelled()` is asked before each sheet; `progress(rows, total rows)` is
    told how many rows were copied after each segment. Zip64 fields from `zip64_from` bytes on (see RawZipWriter).
    """
    placed = [(index, segment) for index, segments in enumerate(parts) for segment in segments]
    order = {id(segment): index for index, segment in placed}
    total = sum(segment.rows for _, segment in placed)
    copied = 0
    source = {"index": None, "file": None}

    def read(segment):
        nonlocal copied
        index = order[id(segment)]
        if source["index"] != index:
            if source["file"] is not None:
                source["file"].close()
            source["index"], source["file"] = index, open_part(index)
        left = segment.length
        while left:
            piece = source["file"].read(min(left, COPY_BUFFER))
            if not piece:
                raise ValueError(f"Part {index} ends before its segments do")
            left -= len(piece)
            yield piece
        copied += segment.rows
        if progress:
            progress(copied, total)

    try:
        with XlsxAssembler(path, headers, types, tz=tz, name=name, max_rows_per_sheet=max_rows_per_sheet,
                           when=when, zip64_from=zip64_from) as assembler:
            for sheet in sheets_of([segment for _, segment in placed], max_rows_per_sheet):
                if is_cancelled and is_cancelled():
                    raise Cancelled()
                assembler.add_sheet(sheet, read)
        return assembler.rows_written
    finally:
        if source["file"] is not None:
            source["file"].close()


class Cancelled(Exception):
    """``is_cancelled()`` said so; the caller decides what it means."""


# --- a zip whose members may come deflated already ---

class RawZipWriter:
    """A zip file written member by member, with sizes and CRCs known before each member's bytes.

    ``write_deflated`` takes a member's raw deflate bytes as they are; ``writestr`` deflates small
    members itself (the interface StreamingXlsxWriter's ``_finish`` uses of zipfile). Zip64 fields are
    written for a size or offset from ``zip64_from`` bytes on (0xFFFFFFFF, the zip's own limit).
    """

    def __init__(self, path, when=None, level=DEFAULT_LEVEL, zip64_from=0xFFFFFFFF):
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close / abort)
        when = when or datetime.now()
        self._dos_time, self._dos_date = dos_date_time(when)
        self._level, self._zip64_from = level, zip64_from
        self._entries = []
        self._offset = 0

    def _write(self, data):
        self._file.write(data)
        self._offset += len(data)

    def writestr(self, name, data):
        name = getattr(name, "filename", name)  # a zipfile.ZipInfo's name, or a name
        data = data.encode() if isinstance(data, str) else data
        self.write_deflated(name, [deflated(data, self._level, final=True)], zlib.crc32(data), len(data),
                            None)

    def write_deflated(self, name, pieces, crc, size, length):
        """A member whose deflated bytes are `pieces` (`length` in all; None: count them, `pieces` is a list)."""
        if length is None:
            length = sum(len(piece) for piece in pieces)
        encoded = name.encode()
        offset = self._offset
        zip64 = size >= self._zip64_from or length >= self._zip64_from
        extra = struct.pack("<HHQQ", 1, 16, size, length) if zip64 else b""
        self._write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45 if zip64 else 20, 0, zlib.DEFLATED,
                                self._dos_time, self._dos_date, crc,
                                0xFFFFFFFF if zip64 else length, 0xFFFFFFFF if zip64 else size,
                                len(encoded), len(extra)) + encoded + extra)
        written = 0
        for piece in pieces:
            self._write(piece)
            written += len(piece)
        if written != length:
            raise ValueError(f"{name}: {written} deflated bytes written, {length} announced")
        self._entries.append((encoded, crc, size, length, offset))

    def close(self):
        start = self._offset
        for encoded, crc, size, length, offset in self._entries:
            big = [value >= self._zip64_from for value in (size, length, offset)]
            fields = [value for value, is_big in zip((size, length, offset), big) if is_big]
            extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
            self._write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45 if fields else 20, 0,
                                    zlib.DEFLATED, self._dos_time, self._dos_date, crc,
                                    0xFFFFFFFF if big[1] else length, 0xFFFFFFFF if big[0] else size,
                                    len(encoded), len(extra), 0, 0, 0, 0,
                                    0xFFFFFFFF if big[2] else offset) + encoded + extra)
        directory_size, count = self._offset - start, len(self._entries)
        if start >= self._zip64_from or directory_size >= self._zip64_from or count >= 0xFFFF:
            end64 = self._offset
            self._write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
                                    directory_size, start))
            self._write(struct.pack("<4sIQI", b"PK\x06\x07", 0, end64, 1))
            self._write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
        else:
            self._write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, directory_size, start, 0))
        self._file.close()

    def abort(self):
        self._file.close()

