"""`python -m sipdiag`: the same engine as the page, for batch use and tests."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .capture.pcapfile import CaptureError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipdiag", description="Diagnose SIP problems from pcap/pcapng captures.")
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="analyze a capture and print the report")
    analyze.add_argument("capture")
    analyze.add_argument("--json", action="store_true", help="print the JSON report (sipdiag.report/1)")
    redact = commands.add_parser("redact", help="write a redacted copy of a capture")
    redact.add_argument("capture")
    redact.add_argument("-o", "--output", required=True)
    redact.add_argument("--key", help="passphrase: the same passphrase gives the same replacements across files")
    args = parser.parse_args(argv)
    try:
        if args.command == "analyze":
            return run_analyze(args.capture, args.json)
        return run_redact(args.capture, args.output, args.key)
    except CaptureError as error:
        print(f"sipdiag: {args.capture}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"sipdiag: {error.filename or args.capture}: {error.strerror}", file=sys.stderr)
        return 2


def run_analyze(path: str, as_json: bool) -> int:
    from .engine import analyze_path

    report = analyze_path(path)
    if as_json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_summary(report)
    return 0


def print_summary(report: dict) -> None:
    capture = report["capture"]
    print(f"{capture['file']}: {capture['format']}, {capture['packets']} packets, "
          f"{len(report['sip_messages'])} SIP messages, {len(report['registrations'])} registrations, "
          f"{len(report['calls'])} calls, {len(report['dns'])} DNS queries")
    for warning in capture["warnings"]:
        print(f"  warning: {warning}")
    for finding in report["findings"]:
        print(f"[{finding['severity']}] {finding['code']}: {finding['summary']}")


def run_redact(path: str, output: str, key: str | None) -> int:
    from .redaction.redactor import redact_command

    if os.path.exists(output) and os.path.samefile(path, output):
        print(f"sipdiag: {output}: this is the capture being redacted; write the copy under another name",
              file=sys.stderr)
        return 2
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        print(f"sipdiag: {output}: the folder {folder} does not exist", file=sys.stderr)
        return 2
    exit_code, summary = redact_command(path, output, key=key)
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return exit_code
