"""A zip of csv files, named after the export, split every ``max_rows_per_file`` rows."""
import io
from datetime import datetime

from exports.writers.base import XLSX_MAX_ROWS, ExportWriter
from exports.writers.csv_file import CsvWriter, open_text
from exports.writers.zip_stream import ZipStream

__all__ = ["ZipCsvWriter"]


class ZipCsvWriter(CsvWriter):
    """A zip (deflated) of csv files named after the export: "<name>.csv", "<name> 2.csv"…

    ``name`` is the export's file name without its extension (see ``ExportWriter``). Each part
    has the header and at most ``max_rows_per_file`` data rows (default 1,048,575, so every part
    opens whole in Excel), and is formatted exactly as ``CsvWriter``. Members are written
    streaming, with zip64 headers so that parts over 4 GiB work, dated with the time the writer was
    made (in ``tz``). ``compresslevel``, ``deflater`` and ``threaded``: see
    ``zip_stream.ZipStream`` (deflate's level; by default about the size of zlib's level 6).
    """

    format_name = "zip"
    format_label = "Zipped CSV"
    file_extension = ".zip"
    mimetype = "application/zip"
    takes_encoded_rows = False  # rendered rows would have to be split at the parts' boundaries

    def __init__(self, path, headers, types, tz=None, name=None, escape_formulas=True,
                 max_rows_per_file=XLSX_MAX_ROWS - 1, compresslevel=None, deflater=None, threaded=False):
        if max_rows_per_file < 1:
            raise ValueError("max_rows_per_file must be at least 1")
        self.max_rows_per_file = max_rows_per_file
        self.escape_formulas = escape_formulas
        self.part_count = 0
        # Not CsvWriter.__init__: there is no single file to open; parts are opened on demand.
        ExportWriter.__init__(self, path, headers, types, tz, name)
        built = datetime.now(self.tz).replace(tzinfo=None)
        self._zip = ZipStream(path, built, compresslevel=compresslevel, deflater=deflater, threaded=threaded)
        self._file = None
        self._member = None
        self._start_container()

    def member_name(self, part):
        """The name of the ``part``-th csv file (1-based) in the zip."""
        return f"{self.name}.csv" if part == 1 else f"{self.name} {part}.csv"

    def _start_container(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        self.part_count += 1
        self._member = MemberStream(self._zip.open(self.member_name(self.part_count)))
        self._file = open_text(io.BufferedWriter(self._member, WRITE_SIZE), self.encoding)
        self._start_csv(self._file)
        self._room = self.max_rows_per_file

    def _finish(self):
        self._file.close()
        self._zip.close()

    def _abort(self):
        try:
            if self._member is not None:
                self._member.finish_on_close = False
                self._file.close()  # what it still buffers is dropped
        finally:
            self._zip.abort()


#: Bytes handed to the deflate at a time.
WRITE_SIZE = 1 << 20


class MemberStream(io.RawIOBase):
    """A zip member as a raw binary stream, for the text stream the csv module writes to; closing it
    ends the member. With ``finish_on_close`` turned off (the zip is being abandoned), it drops
    what it is given and closing does not end the member."""

    def __init__(self, member):
        self.member = member
        self.finish_on_close = True

    def writable(self):
        return True

    def write(self, data):
        if self.finish_on_close:
            self.member.write(bytes(data))  # a copy: the buffer is reused while the deflate runs
        return len(data)

    def close(self):
        if not self.closed and self.finish_on_close:
            self.member.close()
        super().close()
