"""Command lines made from a training script's Config dataclass: one flag per field, defaults shown."""
from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from dataclasses import MISSING, fields

AT_LEAST_ONE = ("epochs", "steps", "batch")  # a run of none of these trains nothing and fails deep inside Keras


class InputError(ValueError):
    """What the user gave (a flag, a folder, a file) cannot be used: said in one line, not a traceback."""


@contextmanager
def said_plainly():
    """A command line's mistakes in what it was pointed at (a missing folder, a malformed label file)
    end it with one line and exit status 1; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (InputError, FileNotFoundError, NotADirectoryError) as error:
        raise SystemExit(f"error: {error}") from None


def true_or_false(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{text!r} is neither true nor false")
    return text.lower() == "true"


def parse_config(config_class, description: str):
    """-> (config_class(**flags), quiet). A tuple-of-int field takes "32,64,128"; a field named in
    the class's CHOICES takes only those values."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = getattr(config_class, "CHOICES", {})
    for field in fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        if field.name in choices:
            parser.add_argument(flag, choices=choices[field.name], default=field.default, help=f"default {field.default}")
        elif field.default is MISSING:
            parser.add_argument(flag, required=True)
        elif isinstance(field.default, bool):  # bool("false") is True: spell the values out
            parser.add_argument(flag, type=true_or_false, default=field.default, metavar="{true,false}",
                                help=f"default {str(field.default).lower()}")
        elif isinstance(field.default, tuple):
            parser.add_argument(flag, type=lambda v: tuple(int(c) for c in v.split(",")), default=field.default,
                                help=f"comma-separated, default {','.join(map(str, field.default))}")
        else:
            kind = type(field.default) if field.default is not None else str
            parser.add_argument(flag, type=kind, default=field.default, help=f"default {field.default}")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar (for log files)")
    args = vars(parser.parse_args())
    for name in AT_LEAST_ONE:
        if name in args and args[name] < 1:
            parser.error(f"--{name} must be at least 1, not {args[name]}")
    quiet = args.pop("quiet")
    return config_class(**args), quiet


def run(config_class, train, description: str) -> None:
    """A training script's main: flags -> Config -> train -> its record printed as JSON."""
    config, quiet = parse_config(config_class, description)
    with said_plainly():
        record = train(config, verbose=2 if quiet else 1)
    print(json.dumps(record, indent=2))
