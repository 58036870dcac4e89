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


def test_predict_shows_a_hostile_file_name_and_class_names_escaped(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    import registry_core
    from registry_core.cli import main

    model = registry_core.create("lenet5")
    model.class_names = [f"digit{k}\x1b]2;pwned\x07" for k in range(10)]
    weights = registry_core.save(model, tmp_path / "lenet5.safetensors")
    image = tmp_path / "evil\x1b[2Jname.png"
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(image)
    assert main(["predict", "--weights", str(weights), str(image), "--top-k", "2"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "evil\\x1b[2Jname.png" in out and "\\x1b]2;pwned\\x07" in out
