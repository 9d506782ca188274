"""A tiny reader of gettext .po files, for the catalogue tests (no dependency beyond the standard library)."""
import ast
from dataclasses import dataclass, field


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str = None
    msgctxt: str = None
    msgstr: dict = field(default_factory=dict)  # {0: "..."} or, for plurals, {0: "...", 1: "..."}
    flags: set = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self):
        """The key of this entry in a compiled catalogue (gettext.GNUTranslations._catalog)."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"


def read_po(path):
    """Every entry of the .po file at `path`, the header (msgid "") included, in file order."""
    entries, entry, target = [], Entry(), None

    def finish():
        nonlocal entry, target
        if target is not None:
            entries.append(entry)
        entry, target = Entry(), None

    for raw in open(path, encoding="utf-8").read().splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            text = ast.literal_eval(line)
        else:
            keyword, _, rest = line.partition(" ")
            if target is not None and keyword in ("msgctxt", "msgid") and (entry.msgstr or keyword == "msgctxt"):
                finish()  # a new entry without a blank line before it
            text = ast.literal_eval(rest)
            target = keyword
            if keyword.startswith("msgstr"):
                index = int(keyword[7:-1]) if "[" in keyword else 0
                target = ("msgstr", index)
                entry.msgstr[index] = ""
        if isinstance(target, tuple):
            entry.msgstr[target[1]] += text
        else:
            setattr(entry, target, (getattr(entry, target) or "") + text)
    finish()
    return entries
