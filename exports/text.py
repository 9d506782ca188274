"""Text that goes into one-line places: mail subjects, file names, headers."""
import re

# C0 controls (CR, LF, tab, ESC, ...), DEL, C1 controls (NEL, ...), and the Unicode line and
# paragraph separators: anything that can break a line or hide in a header. A run of them, with
# the spaces around it, becomes one space.
_LINE_BREAKING = re.compile(r"\s*[\x00-\x1f\x7f-\x9f\u2028\u2029]+\s*")


def one_line(text):
    """`text` without control characters or line separators, each run of them read as a space."""
    return _LINE_BREAKING.sub(" ", text).strip()
