#!/usr/bin/env python3
"""Combine virt-qed-migrate reports (--report FILE) of many hosts.

    vqm-combine-reports.py --output SUMMARY.xml [--text SUMMARY.txt]
        --migrate-dir DIR [--dry-run-dir DIR] HOST...

DIR/HOST.xml is the report of HOST.  SUMMARY.xml holds one <host> per
HOST with its reports (dry run and migration, when present) and the
totals (schema: fleet-summary.rng beside the playbook); the text summary
goes to stdout and to --text.  A host without a migration report was not
reached (the fleet stopped before it) or its run could not write one.
Exit status 0, or 1 when a report cannot be read.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET

COUNTS = ("images-converted", "images-skipped", "images-failed",
          "domains-redefined")


def load(path):
    if not os.path.exists(path):
        return None
    return ET.parse(path).getroot()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", required=True)
    ap.add_argument("--text")
    ap.add_argument("--migrate-dir", required=True)
    ap.add_argument("--dry-run-dir")
    ap.add_argument("hosts", nargs="+")
    a = ap.parse_args()

    top = ET.Element("fleet-summary", {"version": "1"})
    totals = dict.fromkeys(COUNTS, 0)
    lines = []
    state = {"done": 0, "incomplete": 0, "failed": 0, "not-run": 0}
    for host in a.hosts:
        try:
            run = load(os.path.join(a.migrate_dir, host + ".xml"))
            dry = (load(os.path.join(a.dry_run_dir, host + ".xml"))
                   if a.dry_run_dir else None)
        except (ET.ParseError, OSError) as e:
            print("vqm-combine-reports: %s: %s" % (host, e), file=sys.stderr)
            return 1
        h = ET.SubElement(top, "host", {"name": host})
        error = None
        if a.dry_run_dir and os.path.exists(
                os.path.join(a.dry_run_dir, host + ".error")):
            with open(os.path.join(a.dry_run_dir, host + ".error")) as f:
                error = f.read().strip() or "the dry run failed"
        if error is not None and run is None:
            status = "failed"
            lines.append("%s: dry run failed: %s" % (host, error))
        elif run is None:
            status = "not-run"
            lines.append("%s: not migrated%s" % (
                host, " (dry run only)" if dry is not None else ""))
        else:
            rc = run.get("exit-status")
            status = {"0": "done", "3": "incomplete"}.get(rc, "failed")
            s = run.find("summary")
            counts = {k: int(s.get(k, 0)) if s is not None else 0
                      for k in COUNTS}
            for k in COUNTS:
                totals[k] += counts[k]
                h.set(k, str(counts[k]))
            h.set("exit-status", rc)
            lines.append("%s: %s (exit %s): %d image(s) converted, %d "
                         "skipped, %d failed, %d domain(s) redefined" % (
                             host, status, rc, counts["images-converted"],
                             counts["images-skipped"],
                             counts["images-failed"],
                             counts["domains-redefined"]))
            for img in run.iter("image"):
                if img.get("outcome") in ("skipped", "failed"):
                    r = img.find("reason")
                    lines.append("    %s %s: %s" % (
                        img.get("outcome"), img.get("path"),
                        r.text if r is not None else ""))
        h.set("status", status)
        state[status] += 1
        if error is not None:
            ET.SubElement(h, "error").text = error
        if dry is not None:
            d = ET.SubElement(h, "dry-run")
            d.append(dry)
        if run is not None:
            m = ET.SubElement(h, "migration")
            m.append(run)
    top.set("hosts", str(len(a.hosts)))
    for k, v in state.items():
        top.set("hosts-" + k, str(v))
    for k in COUNTS:
        top.set(k, str(totals[k]))
    lines.append("fleet: %d host(s): %d done, %d incomplete, %d failed, %d "
                 "not migrated; %d image(s) converted, %d skipped, %d "
                 "failed, %d domain(s) redefined" % (
                     len(a.hosts), state["done"], state["incomplete"],
                     state["failed"], state["not-run"],
                     totals["images-converted"], totals["images-skipped"],
                     totals["images-failed"], totals["domains-redefined"]))
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    ET.ElementTree(top).write(a.output, encoding="UTF-8",
                              xml_declaration=True)
    text = "\n".join(lines) + "\n"
    if a.text:
        with open(a.text, "w") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
