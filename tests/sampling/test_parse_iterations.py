"""The one parser of iteration counts ("64,16"), shared by the command line and the app."""

from __future__ import annotations

import pytest

from fractal_studio.errors import UserError
from fractal_studio.sampling.validation import parse_iterations


@pytest.mark.parametrize("text, expected", [
    ("64,16", (64, 16)), (" 8, 4 ", (8, 4)), ("8 4", (8, 4)), ("8,,4", (8, 4)), ("3", (3,)),
    ("", None), ("  ", None), (None, None),
])
def test_parse_iterations_reads_counts_and_leaves_empty_text_to_the_model(text, expected):
    assert parse_iterations(text) == expected


@pytest.mark.parametrize("text, message", [
    ("8,x", r"iterations expects whole numbers separated by commas, e.g. 64,16; got '8,x'"),
    ("1.5", "whole numbers"),
    ("0", r"iterations must be at least 1 at every level \(e.g. 64,16\), got '0'"),
    ("-1", "at least 1"),
    ("8,0", "at least 1"),
])
def test_parse_iterations_refuses_bad_text_with_a_clear_message(text, message):
    with pytest.raises(UserError, match=message):
        parse_iterations(text)


def test_the_message_names_the_option_it_came_from():
    from fractal_studio.cli.common import parse_iterations as cli_parse

    with pytest.raises(UserError, match="^--iterations expects whole numbers"):
        cli_parse("8,x")
    assert cli_parse("64,16") == (64, 16)
