"""Every command group registers itself and answers --help."""
from __future__ import annotations

import pytest

from smolbook.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_registers_and_helps(command, capsys):
    parser = build_parser([command])
    assert command in parser._subparsers._group_actions[0].choices
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: smolbook " + command in capsys.readouterr().out
