#!/usr/bin/env python3
"""Mutation testing: plants each bug of mutants.txt, one at a time, in a scratch copy of the tree,
rebuilds incrementally, runs the tests, and prints which test killed it (or that it survived).

  make mutate                        # every mutant (about 30 minutes on 2 cores)
  tests/mutants/mutate.py --only ID  # one or more mutants by id
  tests/mutants/mutate.py --list     # the mutants, without running anything

A mutant is a literal `find` text in a `file` (it must occur exactly once) replaced by `replace`.
Every mutant must be killed: the exit code is 0 only when every mutant made some test fail. A
mutant that no longer applies (the code moved) or no longer compiles is an error of the list, and
is reported as such: fix its entry.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_LABELS = "unit|model"


def parse_mutants(path):
    """Reads blocks of `key: value` lines; `[id]` starts a block, `find:`/`replace:` may continue
    on lines indented by two spaces (joined with newlines)."""
    mutants, current, last_key = [], None, None
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            header = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line.strip())
            if header:
                current = {"id": header.group(1), "line": number, "labels": DEFAULT_LABELS}
                mutants.append(current)
                last_key = None
                continue
            if current is None:
                sys.exit(f"{path}:{number}: text before the first [id]")
            if line.startswith("  ") and last_key in ("find", "replace"):
                current[last_key] += "\n" + line[2:]
                continue
            key, sep, value = line.partition(":")
            if not sep or key not in ("file", "find", "replace", "why", "labels"):
                sys.exit(f"{path}:{number}: expected file/find/replace/why/labels, got: {line}")
            current[key] = value[1:] if value.startswith(" ") else value
            last_key = key
    ids = set()
    for m in mutants:
        for key in ("file", "find", "replace", "why"):
            if key not in m:
                sys.exit(f"{path}:{m['line']}: mutant [{m['id']}] has no {key}")
        if m["id"] in ids:
            sys.exit(f"{path}:{m['line']}: duplicate id [{m['id']}]")
        ids.add(m["id"])
    return mutants


def run(cmd, cwd, log, timeout=None):
    with open(log, "w", encoding="utf-8") as out:
        try:
            return subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\ntimed out after {timeout} s\n")
            return 124


def failed_tests(log):
    names = []
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"\s*\d+ - (\S+) \(", line)
            if m:
                names.append(m.group(1))
    return names


def make_scratch(scratch):
    """A copy of the tracked files (the working tree's versions) with the models and ONNX Runtime
    linked in, so the build directory inside it survives between runs."""
    src = os.path.join(scratch, "tree")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           stdout=subprocess.PIPE).stdout.split(b"\0")
    for rel in files:
        if not rel:
            continue
        rel = rel.decode()
        a, b = os.path.join(ROOT, rel), os.path.join(src, rel)
        if not os.path.isfile(a):
            continue
        os.makedirs(os.path.dirname(b), exist_ok=True)
        # Copy only what changed, so an unchanged file keeps its time stamp and the incremental
        # build stays incremental; a copied file gets a new time stamp (not the source's, which
        # can be older than the objects built from a mutated copy), so it is rebuilt.
        if not os.path.exists(b) or open(a, "rb").read() != open(b, "rb").read():
            shutil.copyfile(a, b)
    # Files the tree no longer has (a deleted or moved source would still be compiled).
    tracked = {rel.decode() for rel in files if rel}
    for folder, dirs, names in os.walk(src):
        rel_folder = os.path.relpath(folder, src)
        if rel_folder == "build" or rel_folder.startswith("build" + os.sep):
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in names:
            rel = os.path.normpath(os.path.join(rel_folder, name))
            if rel not in tracked and not os.path.islink(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
    for link in (".cache", "tests/ort/node_modules"):
        target, name = os.path.join(ROOT, link), os.path.join(src, link)
        if os.path.exists(target) and not os.path.lexists(name):
            os.symlink(target, name)
    return src


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", default=os.path.join(HERE, "mutants.txt"))
    parser.add_argument("--scratch", default=os.path.join(ROOT, "build-mutants"))
    parser.add_argument("--only", nargs="*", help="mutant ids to run")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--check", action="store_true",
                        help="check that every mutant applies to the tree (no build); for ctest")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    mutants = parse_mutants(args.mutants)
    if args.only:
        unknown = set(args.only) - {m["id"] for m in mutants}
        if unknown:
            sys.exit(f"unknown mutant id(s): {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m["id"] in args.only]
    if args.check:
        bad = 0
        for m in mutants:
            path = os.path.join(ROOT, m["file"])
            count = open(path, encoding="utf-8").read().count(m["find"]) if os.path.isfile(path) else -1
            if count != 1:
                bad += 1
                where = "no such file" if count < 0 else f"find text occurs {count} times"
                print(f"{args.mutants}:{m['line']}: [{m['id']}] does not apply to {m['file']}: {where}")
        print(f"mutate: {len(mutants) - bad} of {len(mutants)} mutants apply to the tree")
        return 1 if bad else 0
    if args.list:
        for m in mutants:
            print(f"{m['id']:32} {m['file']:44} {m['why']}")
        return 0

    os.makedirs(args.scratch, exist_ok=True)
    src = make_scratch(args.scratch)
    # The build directory sits inside the copy as build/ does in the repository, so the compiler
    # sees the same relative paths and ccache reuses the repository build's objects.
    build = os.path.join(src, "build")
    logs = os.path.join(args.scratch, "logs")
    os.makedirs(logs, exist_ok=True)
    configure = ["cmake", "-S", src, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                 "-DQALIGN_BUILD_BENCH=OFF", "-DQALIGN_BUILD_PYTHON=OFF"]
    if shutil.which("ccache"):
        configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
    build_cmd = ["cmake", "--build", build, "-j", str(args.jobs)]

    def ctest(labels, log):
        # Not the list's own check: a planted mutant makes its find text disappear from the copy.
        return run(["ctest", "-j", str(args.jobs), "-L", labels, "-E", "^MutantsApplyToTheTree$",
                    "--timeout", "300"], build, log)

    print(f"mutate: {len(mutants)} mutants; scratch copy in {src}", flush=True)
    if run(configure, ROOT, os.path.join(logs, "configure.log")) != 0:
        sys.exit(f"mutate: configure failed, see {logs}/configure.log")
    if run(build_cmd, ROOT, os.path.join(logs, "build.log")) != 0:
        sys.exit(f"mutate: the unmutated tree does not build, see {logs}/build.log")
    for labels in sorted({m["labels"] for m in mutants}):
        log = os.path.join(logs, "baseline_" + re.sub(r"\W", "_", labels) + ".log")
        if ctest(labels, log) != 0:
            sys.exit(f"mutate: tests fail without any mutant ({labels}), see {log}")

    rows = []
    for m in mutants:
        path = os.path.join(src, m["file"])
        start = time.time()
        if not os.path.isfile(path):
            rows.append((m, "NOT APPLIED", "no such file"))
            continue
        with open(path, encoding="utf-8") as f:
            original = f.read()
        count = original.count(m["find"])
        if count != 1:
            rows.append((m, "NOT APPLIED", f"find text occurs {count} times"))
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(original.replace(m["find"], m["replace"]))
        try:
            log = os.path.join(logs, m["id"] + ".log")
            if run(build_cmd, ROOT, log) != 0:
                rows.append((m, "BUILD ERROR", f"see {log}"))
                continue
            code = ctest(m["labels"], log)
            failed = failed_tests(log)
            if code == 0:
                rows.append((m, "SURVIVED", ""))
            else:
                shown = ", ".join(failed[:2]) + (f" (+{len(failed) - 2})" if len(failed) > 2 else "")
                rows.append((m, "killed", shown or f"ctest exit {code}"))
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
            # The restored file must rebuild: give it a new time stamp.
            os.utime(path, None)
        print(f"  {m['id']:32} {rows[-1][1]:12} {time.time() - start:5.0f} s  {rows[-1][2]}",
              flush=True)
    run(build_cmd, ROOT, os.path.join(logs, "restore.log"))

    print()
    print(f"| mutant | file | result | killed by | why it is a plausible bug |")
    print(f"|---|---|---|---|---|")
    for m, result, detail in rows:
        print(f"| {m['id']} | {m['file']} | {result} | {detail} | {m['why']} |")
    killed = sum(1 for _, result, _ in rows if result == "killed")
    print(f"\nmutate: {killed} of {len(rows)} mutants killed "
          f"({100.0 * killed / max(len(rows), 1):.0f}%)")
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
