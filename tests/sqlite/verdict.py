#!/usr/bin/env python3
"""Verdict and table of one tests/sqlite/run.sh run.

  verdict.py RESULTS TOLERATED "TARGETS" "FILES" WALL_SECONDS

RESULTS/<target>/<file>.out is testfixture's output, .rc its exit status
(124/137: timeout), .secs its wall time.  TOLERATED holds case names, one
a line.  For every mount target (not "local") and file: each case that
passed on local disk must pass on the mount unless tolerated; a case that
fails on the mount and did not run on local disk fails too; a file that
printed its summary on local disk must print it on the mount.  Prints the
table and the violations with the lines the test printed for each;
writes RESULTS/failed ("target file" a line); exits 1 on any violation.
"""
import os
import re
import sys

SUMMARY = re.compile(r"^(\d+) errors out of (\d+) tests")
CASE = re.compile(r"^(\S+)\.\.\.(.*)$")
NAMES = {"local": "local", "file": "file://", "s3": "S3"}


class Run:
    """One testfixture run: its summary, passed and failed cases."""

    def __init__(self, path):
        self.out = path + ".out"
        self.rc = int(open(path + ".rc").read().strip() or 0)
        self.secs = float(open(path + ".secs").read().strip() or 0)
        self.passed = set()
        self.failed = []  # as SQLite lists them, in order
        self.started = []
        self.detail = {}  # case name -> lines printed after its name
        self.summary = None  # (errors, tests)
        self.notes = []
        current = None
        with open(self.out, errors="replace") as f:
            lines = f.read().splitlines()
        for line in lines:
            m = SUMMARY.match(line)
            if m:
                self.summary = (int(m.group(1)), int(m.group(2)))
                current = None
                continue
            if line.startswith("!Failures on these tests:"):
                self.failed = line.split(":", 1)[1].split()
                continue
            if line.startswith("run.sh: "):
                self.notes.append(line[len("run.sh: ") :])
                continue
            m = CASE.match(line)
            if m:
                name, rest = m.group(1), m.group(2).strip()
                self.started.append(name)
                if rest == "Ok":
                    self.passed.add(name)
                    current = None
                else:
                    current = name
                    self.detail.setdefault(name, [])
                    if rest:
                        self.detail[name].append(rest)
                continue
            if line.startswith("SQLite 20"):  # the line before the summary
                current = None
                continue
            if current is not None:
                if line.strip() == "Ok":
                    self.passed.add(current)
                    current = None
                elif len(self.detail[current]) < 4 and line.strip():
                    self.detail[current].append(line.strip())
        self.timeout = self.rc in (124, 137)
        # what stopped it: the uncaught Tcl error ("PATH/testfixture: MSG"),
        # else the last line printed
        self.last = lines[-1] if lines else "(no output)"
        for line in reversed(lines):
            if re.match(r"^\S*testfixture: ", line):
                self.last = line.split(": ", 1)[1]
                break
        if self.summary is None and not self.failed and self.started:
            # aborted: the case that was running is the one that failed
            last = self.started[-1]
            if last not in self.passed:
                self.failed = [last]

    def cell(self):
        if self.timeout:
            return "%d/timeout" % len(self.passed), self.secs
        if self.summary is None:
            return "%d/abort" % len(self.passed), self.secs
        errs, tests = self.summary
        return "%d/%d" % (tests - errs, errs), self.secs


def main():
    results, tolerated_file, targets, files, wall = sys.argv[1:6]
    targets = targets.split()
    files = files.split()
    tolerated = set()
    for line in open(tolerated_file):
        line = line.split("#", 1)[0].strip()
        if line:
            tolerated.add(line)

    runs = {}
    for t in targets:
        for f in files:
            runs[(t, f)] = Run(os.path.join(results, t, f))

    violations = []  # (target, file, what, [(case, detail lines)])
    notes = []
    for f in files:
        ref = runs[("local", f)]
        extra = [c for c in ref.failed if c not in tolerated]
        if ref.summary is None or ref.timeout:
            notes.append("local %s: %s (last line: %s)" % (
                f, "timeout" if ref.timeout else "no summary", ref.last))
        if extra:
            notes.append("local %s fails (reference only): %s" % (f, " ".join(extra)))
        for t in targets:
            if t == "local":
                continue
            run = runs[(t, f)]
            if run.timeout:
                violations.append((t, f, "timed out (last: %s)" % run.last, []))
            elif run.summary is None and ref.summary is not None:
                violations.append((t, f, "aborted without a summary: %s" % run.last,
                                   [(c, run.detail.get(c, [])) for c in run.failed]))
            for n in run.notes:
                violations.append((t, f, n, []))
            bad = []
            missing = []
            started = set(run.started)
            for c in sorted(ref.passed - run.passed - tolerated):
                if c in started:
                    bad.append((c, run.detail.get(c, [])))
                else:
                    missing.append(c)
            for c in run.failed:
                if c not in tolerated and c not in ref.passed and c not in ref.failed:
                    bad.append((c, run.detail.get(c, [])))
            if bad:
                violations.append((t, f, "%d case(s) fail on the mount" % len(bad), bad))
            if missing:
                shown = " ".join(missing[:6]) + (" ..." if len(missing) > 6 else "")
                violations.append((t, f, "%d case(s) that pass on local disk did not run"
                                   " on the mount: %s" % (len(missing), shown), []))

    failed_pairs = sorted({(v[0], v[1]) for v in violations})
    with open(os.path.join(results, "failed"), "w") as out:
        for t, f in failed_pairs:
            out.write("%s %s\n" % (t, f))

    # the table: cases passed/failed and wall time per file and target
    width = max(len(f) for f in files + ["total (sum)"])
    head = "%-*s" % (width, "file")
    for t in targets:
        head += "  %-20s" % NAMES[t]
    print("\nSQLite's TCL tests (cases passed/failed, wall seconds)")
    print(head + "  verdict")
    sums = {t: [0, 0, 0.0] for t in targets}
    for f in files:
        row = "%-*s" % (width, f)
        for t in targets:
            cell, secs = runs[(t, f)].cell()
            row += "  %-13s %6.1f" % (cell, secs)
            s = runs[(t, f)].summary
            if s:
                sums[t][0] += s[1] - s[0]
                sums[t][1] += s[0]
            sums[t][2] += secs
        bad = [NAMES[t] for (t, g) in failed_pairs if g == f]
        row += "  " + ("FAIL " + ", ".join(bad) if bad else "ok")
        print(row)
    row = "%-*s" % (width, "total (sum)")
    for t in targets:
        row += "  %-13s %6.1f" % ("%d/%d" % (sums[t][0], sums[t][1]), sums[t][2])
    print(row)
    print("wall clock of the run: %s s" % wall)

    for n in notes:
        print("note: " + n)
    for t, f, what, cases in violations:
        print("\nFAIL %s %s: %s" % (NAMES[t], f, what))
        for c, detail in cases:
            print("  %s%s" % (c, (": " + " | ".join(detail)) if detail else ""))
    if violations:
        print("\n%d file(s) fail on the mount; tolerated by name: %d case(s)"
              % (len(failed_pairs), len(tolerated)))
        return 1
    print("\nevery case that passes on local disk passes on the mount(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
