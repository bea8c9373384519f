"""`python -m convbridge ...` runs the same command line as the convbridge binary."""

import sys

from convbridge._impl import run_cli


def main(argv=None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # sys.argv holds undecodable bytes as lone surrogates: hand the CLI the bytes the OS gave.
    status, out, err = run_cli([a.encode("utf-8", "surrogateescape") if isinstance(a, str) else a for a in arguments])
    sys.stdout.write(out)
    sys.stdout.flush()
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
