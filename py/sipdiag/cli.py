"""`python -m sipdiag`: the same engine as the page, for batch use and tests."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .capture.pcapfile import CaptureError
from .redaction.redactor import DEFAULT_POLICY, POLICIES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipdiag", description="Diagnose SIP problems from pcap/pcapng captures.")
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="analyze a capture and print the report")
    analyze.add_argument("capture")
    analyze.add_argument("--json", action="store_true", help="print the JSON report (sipdiag.report/1)")
    analyze.add_argument("--html", metavar="OUT", help="also write the readable report, one self-contained HTML file "
                                                      "(the page's \"Download report (HTML)\")")
    analyze.add_argument("--with-text", action="store_true",
                         help="put each SIP message's text in the JSON report (sip_messages[].text); without it "
                              "the report leaves the text out and the engine keeps only where each message is "
                              "in the file, so a large signalling capture needs far less memory")
    redact = commands.add_parser("redact", help="write a redacted copy of a capture")
    redact.add_argument("capture")
    redact.add_argument("-o", "--output", required=True)
    redact.add_argument("--key", help="passphrase: the same passphrase gives the same replacements across files "
                                       "(none, or an empty one: a random key, different every time)")
    redact.add_argument("--policy", choices=POLICIES, default=DEFAULT_POLICY,
                        help="frames that cannot be proved clean: " + "; ".join(f"{name}: {what}" for name, what in POLICIES.items()))
    redact.add_argument("--keep-address", action="append", default=[], metavar="ADDRESS_OR_SUBNET",
                        help="leave this address or subnet unmasked (e.g. a vendor's SBC: 198.51.100.0/24); repeatable")
    redact.add_argument("--redact-string", action="append", default=[], metavar="TEXT",
                        help="also replace this text wherever it appears (case-insensitive); repeatable")
    redact.add_argument("--redact-regex", action="append", default=[], metavar="PATTERN",
                        help="also replace whatever this regular expression matches; repeatable")
    redact.add_argument("--keep-oui", action="store_true", help="keep the vendor prefix (first 3 bytes) of MAC addresses")
    args = parser.parse_args(argv)
    try:
        if args.command == "analyze":
            return run_analyze(args.capture, args.json, args.html, args.with_text)
        return run_redact(args)
    except CaptureError as error:
        print(f"sipdiag: {args.capture}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # an option value that does not parse, named in the message
        print(f"sipdiag: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"sipdiag: {error.filename or args.capture}: {error.strerror}", file=sys.stderr)
        return 2


def run_analyze(path: str, as_json: bool, html_path: str | None = None, with_text: bool = False) -> int:
    from .engine import analysis_of, file_reader
    from .report_json import write_json

    if html_path is not None:
        problem = output_problem(path, html_path, "analyzed")
        if problem:
            print(f"sipdiag: {html_path}: {problem}", file=sys.stderr)
            return 2
    # The message rows are made as they are written, never all held at once;
    # the HTML report reads them all, so with --html they are a list.
    analysis = analysis_of(path, keep_text=with_text)
    report = analysis.finish(streamed_messages=as_json and html_path is None)
    if html_path is not None:
        from .html_report import document

        # The ladders read the SDP of the messages they draw: their text, read back from the file.
        message_text = analysis.texts().row_text(report["sip_messages"], file_reader(path))
        with open(html_path, "w", encoding="utf-8") as out:
            out.write(document(report, message_text=message_text))
    if as_json:
        write_json(report, sys.stdout)
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
    for line in finding_lines(report["findings"]):
        print(line)


# Instances listed under a finding in the text output; the JSON has them all.
MAX_INSTANCE_LINES = 10


def finding_lines(findings: list[dict]) -> list[str]:
    """Each cause, the calls/registrations/lookups it concerns when there are
    several, and the findings it explains indented under it."""
    lines = []
    for finding in findings:
        explained = "explained_by" in finding
        margin = "  " if explained else ""
        lead = "which explains " if explained else ""
        lines.append(f"{margin}{lead}[{finding['severity']}] {finding['code']}: {finding['summary']}")
        if finding["count"] > 1:
            instances = finding["instances"]
            lines += [f"{margin}    - {instance['summary']}" for instance in instances[:MAX_INSTANCE_LINES]]
            if len(instances) > MAX_INSTANCE_LINES:
                lines.append(f"{margin}    - and {len(instances) - MAX_INSTANCE_LINES} more")
    return lines


def output_problem(path: str, output: str, doing: str = "redacted") -> str | None:
    """Why OUT cannot receive what is written, in the user's own words for it."""
    if os.path.exists(output):
        if os.path.samefile(path, output):
            return f"this is the capture being {doing}; write the output under another name"
        if os.path.isdir(output):
            return "is a folder; name a file to write"
        if not os.path.isfile(output):
            return "is not a regular file (a device or a pipe); name a file to write"
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist"
    return None


def run_redact(args) -> int:
    from .redaction.redactor import redact_command

    problem = output_problem(args.capture, args.output)
    if problem:
        print(f"sipdiag: {args.output}: {problem}", file=sys.stderr)
        return 2
    options = {"keep_addresses": args.keep_address, "redact_strings": args.redact_string,
               "redact_regexes": args.redact_regex, "keep_oui": args.keep_oui}
    # Only what the user set: the defaults live in RedactionOptions.
    options = {name: value for name, value in options.items() if value}
    # An empty passphrase is no passphrase, as in the page: a random key.
    exit_code, summary = redact_command(args.capture, args.output, key=args.key or None, options=options,
                                        policy=args.policy)
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return exit_code
