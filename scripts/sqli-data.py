#!/usr/bin/env python3
"""Writes the SQL-injection detector's data files from libinjection's keyword table.

Usage: scripts/sqli-data.py PATH/TO/libinjectionrs-0.1.1/src/sqli/generated_data.rs

The table maps upper-cased words to token types and lists the blacklisted fingerprints
as "0" + fingerprint with type F. Output, in crates/rampart-waf/src/operators/sqli/:
  keywords.txt      one "TYPE WORD" per line (WORD may hold spaces), sorted by WORD;
                    entries of type n (plain word) are left out, a miss means the same
  fingerprints.txt  one fingerprint per line (without the "0"), sorted
"""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1]).read_text()
entries = re.findall(r'Keyword \{ word: "([^"\\]*)", token_type: b\'(.)\' \}', src)
assert len(entries) == src.count("Keyword { word:"), "an entry the pattern missed"
out = pathlib.Path(__file__).resolve().parent.parent / "crates/rampart-waf/src/operators/sqli"

keywords = sorted((w, t) for w, t in entries if t not in "Fn")
fingerprints = sorted(w[1:] for w, t in entries if t == "F")
assert all(w.startswith("0") for w, t in entries if t == "F")
assert all(w == w.upper() and w.isascii() and "\n" not in w for w, t in entries)
assert all(1 <= len(f) <= 8 for f in fingerprints)

(out / "keywords.txt").write_text("".join(f"{t} {w}\n" for w, t in keywords))
(out / "fingerprints.txt").write_text("".join(f"{f}\n" for f in fingerprints))
print(f"{len(keywords)} keywords, {len(fingerprints)} fingerprints")
