"""`python -m convbridge ...` runs the same command line as the convbridge binary."""

import sys

from convbridge._impl import run_cli


def main(argv=None) -> int:
    status, out, err = run_cli(list(sys.argv[1:] if argv is None else argv))
    sys.stdout.write(out)
    sys.stdout.flush()
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
