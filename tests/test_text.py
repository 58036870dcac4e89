"""Terminal escaping: text from files, the index or users is shown, never obeyed."""


def test_nothing_a_command_prints_can_drive_the_terminal(capsys):
    """Every command's stdout and stderr pass through one escaping: a hostile text in any
    field (here an unknown model name and a pattern) reaches the terminal as its escapes."""
    from registry_core.cli import main

    hostile = "evil\x1b]0;owned\x07\x1b[31mred\u202e"
    assert main(["info", hostile]) == 2
    assert main(["list", hostile]) == 0
    out, err = capsys.readouterr()
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b]0;owned\\x07" in err and len(err.strip().splitlines()) == 1


def test_the_escaping_keeps_layout_and_escapes_the_rest():
    from registry_core.text import one_line, terminal_safe

    assert terminal_safe("a\tb\r\nc\x1b[2J\x9b\u2028") == "a\tb\r\nc\\x1b[2J\\x9b\\u2028"
    assert one_line("two\nlines\x00") == "two\\nlines\\x00"
