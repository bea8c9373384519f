"""The hostile-input catalogue (tests/hostile/catalogue.json) through the Python API.

Every entry must make convbridge.translate(text, input_shape=..., filters_shape=...) raise a plain ValueError whose
message is exactly the one the command line prints after "convbridge: error: " (taken from the same command line run
in-process, convbridge._impl.run_cli, which is what `python -m convbridge` runs), quickly, without leaking memory or
objects.

The Python API takes input_shape and filters_shape as sequences of ints, not the --input-shape/--filters-shape
text: entries marked "python": "value_error" (shape text, bytes that are not UTF-8) must still raise ValueError,
with a message of its own; their CLI message is checked through run_cli.
"""

from __future__ import annotations

import ast
import gc
import sys
import time
from pathlib import Path

import pytest

import convbridge
from convbridge import _impl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hostile"))
import catalogue  # noqa: E402  (tests/hostile/catalogue.py)

ERROR_PREFIX = "convbridge: error: "
ENTRIES = catalogue.load()

# Known gaps of the Python API (not of the library), as strict xfails: fixing one fails the test until it is
# removed from this table.
PYTHON_GAPS: dict[str, tuple[type[BaseException], str]] = {
    # none at present: translate() now checks a Keras layer's text before it asks for input_shape, as the CLI does
}


def params():
    for entry in ENTRIES:
        marks = []
        if entry.name in PYTHON_GAPS:
            raises, reason = PYTHON_GAPS[entry.name]
            marks.append(pytest.mark.xfail(strict=True, raises=raises, reason=reason))
        yield pytest.param(entry, id=entry.name, marks=marks)


def text_of(data: bytes | None) -> str | None:
    """The Python str for catalogue bytes (bytes that are not UTF-8 become lone surrogates)."""
    return None if data is None else data.decode("utf-8", "surrogateescape")


def shape_argument(text: str | None):
    """input_shape for translate(): the ints (and Nones, Keras' unknown sizes) the --input-shape text denotes, or the
    text itself when it denotes no such sequence (translate must then reject it)."""
    if text is None:
        return None
    try:
        value = ast.literal_eval(f"({text},)")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if len(value) == 1 and isinstance(value[0], (tuple, list)):
        value = tuple(value[0])
    if value and all(type(v) is int or v is None for v in value):
        return tuple(value)
    return text


def filters_argument(text: str | None):
    """filters_shape for translate(): the ints the --filters-shape text denotes, or the text itself when it denotes
    no sequence of ints (translate must then reject it)."""
    value = shape_argument(text)
    if isinstance(value, tuple) and any(v is None for v in value):
        return text
    return value


def translate(entry):
    return convbridge.translate(text_of(entry.layer), input_shape=shape_argument(text_of(entry.input_shape)),
                                filters_shape=filters_argument(text_of(entry.filters_shape)))


def cli_message(entry) -> str:
    """What the command line prints for the entry, without the prefix (run in-process: no argv size limits)."""
    # As bytes, the way the OS hands them to the convbridge binary (they need not be UTF-8).
    arguments = [text_of(a).encode("utf-8", "surrogateescape") for a in entry.cli_arguments()]
    status, out, err = _impl.run_cli(arguments)
    assert status == 2 and out == "", (status, out[:200], err[:400])
    assert err.startswith(ERROR_PREFIX) and err.endswith("\n"), err[:400]
    return err[len(ERROR_PREFIX):-1]


def translate_error(entry) -> ValueError:
    """The ValueError translate raises; any other exception propagates (and fails the test)."""
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        translate(entry)
    elapsed = time.monotonic() - start
    error = info.value
    assert type(error) is ValueError, f"{type(error).__name__} (a ValueError subclass): {error}"
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), (
        f"the ValueError shows another exception: {error.__cause__ or error.__context__!r}")
    assert elapsed < 2.0, f"rejecting took {elapsed:.2f}s"
    return error


@pytest.mark.parametrize("entry", params())
def test_translate_rejects_with_the_cli_message(entry):
    message = cli_message(entry)
    assert entry.fragment in message.split("\n")[0], message[:400]
    error = translate_error(entry)
    if entry.python == "same":
        assert str(error) == message
    else:
        assert entry.python == "value_error", entry.python
        assert str(error), "an empty message"


def test_python_main_prints_the_cli_message(capsys):
    """python -m convbridge: one error line on stderr, nothing on stdout, exit status 2."""
    from convbridge.__main__ import main

    status = main(["translate", "nn.Conv2d(4, 8, 3, stride=2, padding='same')"])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err == ERROR_PREFIX + "padding='same' needs stride=1 but stride=2 (PyTorch: \"padding='same' is " \
        "not supported for strided convolutions\"); use an explicit padding\n"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def _reject_all(entries):
    for entry in entries:
        try:
            translate(entry)
        except ValueError:
            pass


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_rejections_leak_neither_memory_nor_objects():
    entries = [e for e in ENTRIES if e.name not in PYTHON_GAPS]
    _reject_all(entries)  # warm up allocator caches and interned strings
    _reject_all(entries)
    gc.collect()
    objects, rss = len(gc.get_objects()), _rss_bytes()
    for _ in range(10):
        _reject_all(entries)
    gc.collect()
    # The catalogue holds 1-2 MB texts: leaking any input or message would grow by far more than this.
    assert _rss_bytes() - rss < 16 * 1024 * 1024, f"RSS grew by {(_rss_bytes() - rss) / 2**20:.1f} MiB"
    assert len(gc.get_objects()) - objects < 100, "Python objects accumulate"
