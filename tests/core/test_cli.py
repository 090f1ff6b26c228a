import argparse

from sealroom.core import cli


def test_every_command_the_parser_knows_has_a_handler():
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS) | cli.WITHOUT_ENGINE
    assert not set(cli.COMMANDS) & cli.WITHOUT_ENGINE
