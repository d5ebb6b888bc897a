"""Everything up to the radio: options and configuration are checked before any port is opened;
each mistake is one ``error:`` line and exit status 2, never a traceback. One run goes through
click, the hidden --app-factory and a --commands script to bellows' application."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS
from zse.cli import main
from zse.config import ConfigError, parse_config, parse_price

GOOD_CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(main, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "esi.json"
    path.write_text(ESI_CREDENTIALS.to_json())
    return path


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_esi_needs_a_radio_and_a_port(creds: Path) -> None:
    line = one_error(run("esi", "--credentials", str(creds)))
    assert line == (
        "error: give the radio and its serial port: --radio ezsp|znp --device PATH "
        "(or [radio] type and device in the configuration; or --radio sim)"
    )


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("ZSE_BAUDRATE", "abc", "'abc' is not a whole number (ASCII digits, no '_')"),
        ("ZSE_BAUDRATE", "99", "99 is not in the range 1200<=x<=4000000."),
        ("ZSE_START_TIMEOUT", "nan", "'nan' is not a finite number"),
        ("ZSE_RADIO", "zigate", "'zigate' is not one of 'ezsp', 'znp', 'sim'."),
    ],
)
def test_a_bad_environment_variable_is_named(variable: str, value: str, said: str) -> None:
    """A value from the environment was said as the option's own ("Invalid value for
    '-b' / '--baudrate'") to an operator who typed no such option: the variable is named."""
    result = CliRunner().invoke(main, ["esi", "--device", "/dev/null"], env={variable: value})
    option = {"ZSE_BAUDRATE": "'-b' / '--baudrate'", "ZSE_START_TIMEOUT": "'--start-timeout'"}
    option["ZSE_RADIO"] = "'--radio'"
    assert one_error(result) == (
        f"error: Invalid value for {option[variable]} (from {variable}): {said} (see main esi -h)"
    )


def test_esi_needs_credentials() -> None:
    line = one_error(run("esi", "--radio", "ezsp", "--device", "/dev/ttyUSB0"))
    assert line.startswith("error: the ESI needs CBKE credentials: --credentials FILE")


def test_esi_refuses_bad_credentials(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    line = one_error(run("esi", "--radio", "ezsp", "--device", "/dev/x", "--credentials", str(bad)))
    assert line.startswith(f"error: credentials {bad}: ")
    line = one_error(
        run("esi", "--radio", "ezsp", "--device", "/dev/x", "--credentials", str(tmp_path / "no"))
    )
    assert "cannot read" in line


def test_a_missing_radio_library_names_the_extra(
    creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "zigpy_znp.zigbee.application", None)
    line = one_error(
        run("esi", "--radio", "znp", "--device", "/dev/x", "--credentials", str(creds))
    )
    assert line == (
        'error: --radio znp needs zigpy-znp, which is not installed: pip install "zigpy-se[znp]"'
    )
    line = one_error(run("interpan", "listen", "--radio", "znp", "--device", "/dev/x"))
    assert line.endswith('pip install "zigpy-se[znp]"')


def test_esi_config_errors_name_file_table_and_key(tmp_path: Path, creds: Path) -> None:
    config = tmp_path / "esi.toml"
    config.write_text("[network]\nchannel = 27\n")
    line = one_error(run("esi", "--config", str(config), "--credentials", str(creds)))
    assert line == f"error: {config}: [network] channel: 27 is outside 11..26"
    line = one_error(run("esi", "--config", str(tmp_path / "none.toml")))
    assert line == f"error: cannot read {tmp_path / 'none.toml'}: No such file or directory"


def test_serve_and_commands_exclude_each_other(creds: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.txt"
    script.write_text("quit\n")
    line = one_error(
        run(
            "esi",
            "--radio",
            "ezsp",
            "--device",
            "/dev/x",
            "--credentials",
            str(creds),
            "--serve",
            "--commands",
            str(script),
        )
    )
    assert line == "error: --serve and --commands exclude each other"


def test_interpan_send_checks_its_destination() -> None:
    line = one_error(
        run(
            "interpan", "send", "get-price", "--radio", "ezsp", "--device", "/dev/x",
            "--to", "00:00:00:00:00:00:00:00",
        )
    )  # fmt: skip
    assert line.startswith("error: --to: ")


@pytest.mark.parametrize("pan", ["-1", "0", "0x0000", "65536", "0x10000", "PAN", ""])
def test_interpan_pan_is_range_checked_with_a_plain_message(pan: str) -> None:
    result = run(
        "interpan", "send", "get-price", "--radio", "ezsp", "--device", "/dev/x", "--pan", pan
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [  # one line (click's own usage errors: four)
        "error: Invalid value for '--pan': PAN id must be 0x0001 to 0xFFFF (0xFFFF: every PAN; "
        f"0x0000 reads as intra-PAN), not {pan!r} (see main interpan send get-price -h)"
    ]
    assert "0x-" not in result.output
    assert "Traceback" not in result.output


def test_interpan_needs_a_radio() -> None:
    result = run("interpan", "listen", "--device", "/dev/x")
    assert result.exit_code == 2
    assert "Missing option '--radio'" in result.output


@pytest.mark.parametrize("command", ["join", "watch"])
def test_zse_han_does_not_offer_a_radio_it_refuses(command: str) -> None:
    """``--radio znp`` was in ``zse han``'s choices and help, then refused once parsed: the
    choices are the radios it runs on (as ``zse interpan`` offers no ``sim``), the help says
    why Z-Stack is not one, and ``--radio znp`` (or ``ZSE_RADIO=znp``, which ``zse esi``
    takes) is a usage error saying it."""
    helped = run("han", command, "--help")
    assert helped.exit_code == 0
    assert "--radio [ezsp] " in helped.output
    assert "not znp:" in helped.output
    for args, env in ((["--radio", "znp"], {}), ([], {"ZSE_RADIO": "ZNP"})):
        result = CliRunner().invoke(main, ["han", command, *args, "-d", "/dev/x"], env=env)
        line = one_error(result)
        assert line.startswith("error: Invalid value for '--radio'"), line
        assert "EZSP" in line
        assert "docs/radios.md on Z-Stack" in line


def test_esi_through_click_to_bellows(tmp_path: Path, creds: Path) -> None:
    """The click command, --app-factory and a --commands script, to the fake NCP: the ESI
    starts, provisions, prints the registry and stops with status 0."""
    script = tmp_path / "commands.txt"
    script.write_text(
        f"provision 00:0d:6f:00:0a:00:00:01 '{GOOD_CODE}' --label ihd\ndevices\nquit\n"
    )
    result = run(
        "esi",
        "--radio",
        "ezsp",
        "--device",
        "/dev/fake-ncp",
        "--credentials",
        str(creds),
        "--database",
        str(tmp_path / "han.db"),
        "--commands",
        str(script),
        "--app-factory",
        "tests.cli_sticks.click_factory:factory",
    )
    assert result.exit_code == 0, result.output
    assert "ESI running" in result.output
    assert "provisioned 00:0d:6f:00:0a:00:00:01 (ihd): pending provisioning" in result.output
    assert "00:0d:6f:00:0a:00:00:01  pending provisioning" in result.output
    assert result.output.rstrip().endswith("ESI stopped")
    assert (tmp_path / "han.db").exists()


# -- the configuration file ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "radio = 1",
            "config: [radio]: must be a table",
        ),
        ("[radio]\ntype = 'zigate'", "config: [radio] type: 'zigate' is not a radio zse drives"),
        ("[radio]\ndevcie = 'x'", "config: [radio]: unknown key 'devcie'"),
        ("[network]\npan_id = 0xFFFF", "config: [network] pan_id: 65535 is outside 1..65534"),
        ("[network]\nform = 'yes'", "config: [network] form: expected bool, got str"),
        ("[esi]\npermit_seconds = 300", "config: [esi] permit_seconds: 300 is outside 1..254"),
        ("[esi]\ncredentials = [1]", "config: [esi] credentials: expected a list of non-empty"),
        ("[[devices]]\neui64 = '00:0d:6f:00:0a:00:00:01'", "config: [[devices]] #1: needs eui64"),
        (
            f"[[devices]]\neui64 = 'nope'\ninstall_code = '{GOOD_CODE}'",
            "config: [[devices]] #1 eui64: ",
        ),
        (
            "[[devices]]\neui64 = '00:0d:6f:00:0a:00:00:01'\ninstall_code = '83FE D340'",
            "config: [[devices]] #1 install_code: ",
        ),
        ("[groups]\nstreet = ['xyz']", "config: [groups] street: "),
        ("[[prices]]\nrate_label = 'x'", "config: [[prices]] #1: needs price"),
        ("[[prices]]\nprice = 'cheap'", "config: [[prices]] #1: price 'cheap' is not a decimal"),
        (
            "[[prices]]\nprice = '0.1'\ngroup = 'a'\nbroadcast = true",
            "config: [[prices]] #1: give at most one target, got group and broadcast",
        ),
        ("[[prices]]\nprice = '0.1'\nrate_label = 'thirteen byte'", "rate label is 13 bytes"),
        ("[esi\n", "config: not TOML: "),
        ("[other]\n", "config: unknown table or key 'other'"),
    ],
)
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value)


def test_config_paths_and_defaults(tmp_path: Path) -> None:
    config = parse_config(
        "[esi]\ncredentials = 'a.json'\ndatabase = '/var/lib/han.db'\n", base=tmp_path
    )
    assert config.credentials == (tmp_path / "a.json",)
    assert config.database == Path("/var/lib/han.db")
    assert config.permit_seconds == 254
    assert config.network.form is False
    merged = config.override(radio="znp", device="/dev/ttyACM0", baudrate=None, form=True)
    assert (merged.radio.radio, merged.radio.device, merged.network.form) == (
        "znp",
        "/dev/ttyACM0",
        True,
    )


def test_decimal_prices() -> None:
    price = parse_price("12.50", issuer_event_id=1)
    assert (price.price, price.price_trailing_digit) == (1250, 2)
    assert parse_price(3, issuer_event_id=1).price == 3
    with pytest.raises(ConfigError, match="non-negative"):
        parse_price("-1", issuer_event_id=1)


def test_esi_time_zone_is_an_iana_zone(tmp_path: Path, creds: Path) -> None:
    """#14.6: ``[esi] time_zone`` names the Time server's zone; an unknown one is one line."""
    assert parse_config('[esi]\ntime_zone = "Europe/London"\n').time_zone == "Europe/London"
    assert parse_config("").time_zone is None
    config = tmp_path / "esi.toml"
    config.write_text('[esi]\ntime_zone = "Europe/Atlantis"\n')
    line = one_error(run("esi", "--config", str(config), "--credentials", str(creds)))
    assert line == f"error: {config}: [esi] time_zone: unknown time zone 'Europe/Atlantis'"
