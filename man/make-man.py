#!/usr/bin/env python3
"""Writes a man page from the text the program itself prints, so that the
page and --help (or the option table of docs/configuration.md) cannot drift:

  make-man.py help NAME SECTION VERSION PROGRAM OUT   (runs PROGRAM --help)
  make-man.py conf NAME SECTION VERSION PROGRAM OUT   (runs mtalog-options)

`help`: the --help text: its first block is the synopsis; indented lines
starting with '-' are options (description after two spaces or on the lines
below); a paragraph starting "Options:" (or "X options:", a subsection)
heads an option list; "Signals:" and "Exit status:" start sections of their
own; other paragraphs describe.
`conf`: the Markdown option table mtalog-options prints (docs/configuration.md
embeds the same table), one entry per option.
"""
import datetime
import os
import re
import subprocess
import sys

# The page's date: SOURCE_DATE_EPOCH (reproducible builds; scripts/package
# sets it from packaging/changelog), else today.
DATE = (datetime.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), datetime.timezone.utc).date()
        if os.environ.get("SOURCE_DATE_EPOCH") else datetime.date.today()).isoformat()

# What --help does not say: per page, its one-line name, and the sections
# after the generated ones.
PAGES = {
    "mtacore": {
        "what": "the reference MTA core: loads MTA modules such as mtalog.so and drives their hooks",
        "tail": [("FILES", [
            "/etc/mtalog/mtacore.conf: the example config (its mtalog stanza writes under /var/log/mtalog).",
            "/etc/logrotate.d/mtalog: daily rotation of those files; postrotate sends SIGHUP.",
            "/usr/lib/<arch>/mtacore/modules/mtalog.so: the module."]),
            ("SEE ALSO", ["mtalog.conf(5), mtalog-ship(8), logrotate(8); /usr/share/doc/mtalog/."])],
    },
    "mtalog-ship": {
        "what": "ship mtalog's records to NATS JetStream, and read them back each once",
        "tail": [("FILES", [
            "/etc/mtalog/ship.conf: the example config.",
            "/var/lib/mtalog-ship: state_dir of the service (cursor.json, status.json, the lock).",
            "/lib/systemd/system/mtalog-ship.service: the service, as the system user mtalog-ship "
            "in the group adm."]),
            ("SEE ALSO", ["mtacore(8), mtalog.conf(5), systemctl(1), nats-server(8); "
                          "/usr/share/doc/mtalog/."])],
    },
    "mtalog.conf": {
        "what": "the mtalog stanza of an MTA's config: where and how mtalog writes its records",
        "head": [
            "mtalog.so is loaded by an MTA core (mtacore(8), Momentum, or Exim through ${dlfunc}) when "
            "its config has an mtalog stanza. The config is in Momentum's syntax: an instance name, "
            "then options, one per line; # starts a comment; durations take us, ms, s, m, h or d; sizes "
            "take K, M or G (binary); modes are octal. Several stanzas load several instances, each with its own files. An "
            "error names file:line:column and the config is refused: nothing is written.",
            "The files can be rotated by logrotate (create, then SIGHUP to the core: every record "
            "is written once, to the old file or the new one) or by mtalog itself (rotate_size).",
        ],
        "synopsis": ['mtalog "NAME" {', '  attempt_logfile = "/var/log/mtalog/attempt.log"',
                     '  attempt_format  = "json"', '  ...', '}'],
        "tail": [("FILES", [
            "/etc/mtalog/mtacore.conf: the example config with an mtalog stanza.",
            "/usr/share/mtalog/bounce_rules.conf: the default bounce rules, built into the module."]),
            ("SEE ALSO", ["mtacore(8), mtalog-ship(8), logrotate(8); /usr/share/doc/mtalog/ "
                          "(configuration.md and formats.md: every option and field, with examples)."])],
    },
}


def roff(text):
    """Plain text as roff: backslashes escaped, hyphens literal, no line
    taken for a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.split("\n"))


def paragraphs(lines):
    block = []
    for line in lines:
        if line.strip():
            block.append(line.rstrip())
        elif block:
            yield block
            block = []
    if block:
        yield block


OPTION = re.compile(r"^\s{1,8}(-\S.*?)(?:\s{2,}(\S.*))?$")


def option_list(block):
    """[(option, description)] when `block` is an option list: lines that
    start (indented at most 8) with '-' are options, more indented lines
    continue the description; else None."""
    out = []
    for line in block:
        m = OPTION.match(line)
        indent = len(line) - len(line.lstrip())
        if m and indent <= 8:
            out.append([m.group(1).strip(), (m.group(2) or "").strip()])
        elif out and indent > 8:
            out[-1][1] = (out[-1][1] + " " + line.strip()).strip()
        else:
            return None
    return out


def write_options(out, options):
    for opt, desc in options:
        out.append(".TP")
        out.append("\\fB" + roff(opt) + "\\fR")
        out.append(roff(desc))


def header(name, section, version, out):
    out.append('.TH "%s" "%s" "%s" "mtalog %s" "mtalog"' % (name.upper(), section, DATE, version))
    out.append(".SH NAME")
    out.append(roff(name) + " \\- " + roff(PAGES[name]["what"]))


def footer(name, out):
    for title, lines in PAGES[name]["tail"]:
        out.append('.SH "%s"' % title)
        for line in lines:
            out.append(".PP")
            out.append(roff(line))


def from_help(name, section, version, text):
    out = []
    header(name, section, version, out)
    blocks = list(paragraphs(text.split("\n")))
    usage = blocks.pop(0)
    out.append(".SH SYNOPSIS")
    out.append(".nf")
    lead = len(re.match(r"^((usage|Usage):\s*)?", usage[0]).group(0))
    for line in usage:
        out.append(roff(line[lead:] if line[:lead].isspace() or line is usage[0] else line.strip()))
    out.append(".fi")
    # Described first, then the options (groups headed "X options:" as
    # subsections), then the named sections, each in the order --help has them.
    described, option_groups, named_sections = [], [], []
    for block in blocks:
        group = re.match(r"^(?:(\S+) )?[Oo]ptions:\s*(.*)$", block[0])
        named = re.match(r"^(Signals|Exit status):\s*(.*)$", block[0])
        if group:
            rest = block[1:] if not group.group(2) else [group.group(2)] + block[1:]
            listed = option_list(rest)
            if listed is None:
                raise SystemExit("make-man: %s: an options paragraph that is not an option list" % name)
            option_groups.append((group.group(1), listed))
        elif named:
            named_sections.append((named.group(1).upper(),
                                   " ".join([named.group(2)] + [l.strip() for l in block[1:]]).strip()))
        elif option_list(block) is not None:
            option_groups.append((None, option_list(block)))
        else:
            described.append(" ".join(l.strip() for l in block))
    out.append(".SH DESCRIPTION")
    for para in described:
        out.append(".PP")
        out.append(roff(para))
    if option_groups:
        out.append(".SH OPTIONS")
        for title, listed in option_groups:
            if title:
                out.append('.SS "%s options"' % roff(title))
            write_options(out, listed)
    for title, para in named_sections:
        out.append('.SH "%s"' % title)
        out.append(".PP")
        out.append(roff(para))
    footer(name, out)
    return "\n".join(out) + "\n"


def cells(row):
    """The cells of a Markdown table row (a \\| inside a cell is a |)."""
    parts = re.split(r"(?<!\\)\|", row.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def unmark(text):
    return text.replace("`", "")


def from_options(name, section, version, text):
    out = []
    header(name, section, version, out)
    page = PAGES[name]
    out.append(".SH SYNOPSIS")
    out.append(".nf")
    out.extend(roff(line) for line in page["synopsis"])
    out.append(".fi")
    out.append(".SH DESCRIPTION")
    for para in page["head"]:
        out.append(".PP")
        out.append(roff(para))
    out.append(".SH OPTIONS")
    rows = [cells(line) for line in text.split("\n") if line.startswith("|")]
    if len(rows) < 3 or rows[0][:4] != ["option", "type", "default", "meaning"]:
        raise SystemExit("make-man: the option table has not the columns option, type, default, meaning")
    for opt, kind, default, meaning in rows[2:]:
        out.append(".TP")
        out.append("\\fB%s\\fR = \\fI%s\\fR (default: %s)" % (roff(unmark(opt)), roff(unmark(kind)),
                                                              roff(unmark(default))))
        out.append(roff(unmark(meaning)))
    footer(name, out)
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 7 or argv[1] not in ("help", "conf"):
        raise SystemExit(__doc__)
    kind, name, section, version, source, target = argv[1:]
    run = subprocess.run([source, "--help"] if kind == "help" else [source], capture_output=True, text=True,
                         check=False)
    if run.returncode != 0 or not run.stdout:
        raise SystemExit("make-man: %s exited %d: %s" % (source, run.returncode, run.stderr))
    text = run.stdout
    page = from_help(name, section, version, text) if kind == "help" else from_options(name, section, version, text)
    with open(target, "w", encoding="utf-8") as f:
        f.write(page)


if __name__ == "__main__":
    main(sys.argv)
