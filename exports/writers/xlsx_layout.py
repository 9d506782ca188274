"""What both xlsx engines share: sheet names, the header's look, column widths, text rules."""
import re

__all__ = ["DATE_FORMAT", "DATETIME_FORMAT", "clean_text", "column_widths", "sheet_title", "validate_sheet_rows"]

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"

# Column widths in Excel's character units, by column type; a wider header widens its column
# (plus room for the filter button), up to MAX_WIDTH.
TYPE_WIDTHS = {"text": 24, "integer": 11, "decimal": 13, "boolean": 9, "date": 12, "datetime": 20}
FILTER_BUTTON = 3
MAX_WIDTH = 60

# Characters XML 1.0 cannot hold (control characters other than tab, LF, CR; lone surrogates;
# U+FFFE, U+FFFF). They are removed from text: a file cannot carry them, and one such value must
# not fail a whole export.
ILLEGAL_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Excel reads "_x0041_" in text as the character U+0041 (OOXML's escape for characters XML cannot
# hold); such a literal is kept by escaping its underscore as "_x005F_". openpyxl reads the file back
# without undoing either, so it shows the escaped form; Excel, LibreOffice and calamine the original.
OOXML_ESCAPE_RE = re.compile("_(x[0-9A-Fa-f]{4}_)")

# Text that openpyxl would store as an error value instead of a string.
ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})


def validate_sheet_rows(max_rows_per_sheet, limit):
    if not 2 <= max_rows_per_sheet <= limit:
        raise ValueError(f"max_rows_per_sheet must be between 2 and {limit} (header included)")


def sheet_title(base, number):
    """"Export", "Export 2", "Export 3"…"""
    return base if number == 1 else f"{base} {number}"


def column_widths(headers, types):
    return [min(max(TYPE_WIDTHS[t], len(h) + FILTER_BUTTON), MAX_WIDTH) for h, t in zip(headers, types)]


def clean_text(v):
    """``v`` as text an xlsx holds: ``str()`` of other values, XML-illegal characters removed, "_xHHHH_" kept."""
    if v.__class__ is not str and not isinstance(v, str):
        v = str(v)
    if not v.isprintable():
        v = ILLEGAL_XML_RE.sub("", v)
    if "_x" in v:
        v = OOXML_ESCAPE_RE.sub(r"_x005F_\1", v)
    return v
