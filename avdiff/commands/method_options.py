"""`avdiff enhance`'s per-method flags, made from the registry of posterior methods.

Every option of every registered method (built in or from a plug-in) becomes one flag,
`--nmf-pass-updates 12` for `nmf_pass_updates`, whose value is parsed as YAML and checked against
the settings class of a method that has it while the arguments are parsed, so a bad value stops
the command before any work. A flag given for a method that lacks the option is an error naming
the methods that have it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from avdiff.errors import AVDiffError, InputError
from avdiff.posterior.registry import method_entry, option_fields


def flag_name(option: str) -> str:
    return "--" + option.replace("_", "-")


def _parse_option(option: str, method: str) -> Callable[[str], Any]:
    """argparse type: the text as YAML, checked as option `option` of `method`."""
    def parse(text: str) -> Any:
        try:
            value = yaml.safe_load(text)
            settings = method_entry(method).settings({option: value}, source=flag_name(option))
        except (yaml.YAMLError, AVDiffError, ValueError, TypeError) as error:
            reason = str(error).removeprefix(f"{flag_name(option)}: ").removeprefix("section '<top>': ")
            raise argparse.ArgumentTypeError(reason) from error
        return getattr(settings, option)

    parse.__name__ = option  # argparse names the type in some errors
    return parse


def add_method_option_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                            skip: Iterable[str] = ()) -> None:
    """One flag per option of the registered methods (default None: the model's / the method's)."""
    for option, owners in sorted(option_fields().items()):
        if option in skip:
            continue
        field: dataclasses.Field = owners[0][1]
        methods = ", ".join(name for name, _ in owners)
        parser.add_argument(flag_name(option), dest=f"method_option_{option}", default=None, metavar="VALUE",
                            type=_parse_option(option, owners[0][0]),
                            help=f"{field.metadata.get('help', option)} [{methods}]")


def given_method_options(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """The method options given as flags, checked to be options of `method`."""
    given = {name.removeprefix("method_option_"): value for name, value in vars(args).items()
             if name.startswith("method_option_") and value is not None}
    fields = {f.name for f in dataclasses.fields(method_entry(method).method_class.settings_class)}
    wrong = sorted(set(given) - fields)
    if wrong:
        owners = option_fields()
        details = "; ".join(f"{flag_name(o)} is an option of {', '.join(n for n, _ in owners[o])}" for o in wrong)
        raise InputError(f"method {method!r} has no option {', '.join(flag_name(o) for o in wrong)} ({details})")
    return given


def add_settings_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, settings_class: type,
                       prefix: str, skip: Iterable[str] = ()) -> None:
    """One flag per field of one settings class (a command with one method, e.g. `avdiff extract`):
    the value parsed as YAML and checked against the class while the arguments are parsed."""
    from avdiff.config.loader import from_dict, to_dict

    for field in dataclasses.fields(settings_class):
        if field.name in skip:
            continue

        def parse(text: str, name: str = field.name) -> Any:
            try:
                settings = from_dict(settings_class, {**to_dict(settings_class()), name: yaml.safe_load(text)},
                                     flag_name(name))
            except (yaml.YAMLError, AVDiffError, ValueError, TypeError) as error:
                raise argparse.ArgumentTypeError(str(error).removeprefix(f"{flag_name(name)}: ")) from error
            return getattr(settings, name)

        parse.__name__ = field.name
        parser.add_argument(flag_name(field.name), dest=f"{prefix}{field.name}", default=None, metavar="VALUE",
                            type=parse, help=f"{field.metadata.get('help', field.name)} (default: {field.default!r})")


def given_settings(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The settings given as flags made by `add_settings_flags` with `prefix`."""
    return {name.removeprefix(prefix): value for name, value in vars(args).items()
            if name.startswith(prefix) and value is not None}
