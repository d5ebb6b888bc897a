"""Device labels and QR codes that carry an EUI-64 with an install code (or a link key).

Manufacturers print the install code inside a larger string, usually as a QR code. The forms
read here (docs/installcode.md gives where each comes from):

* ``Z:<EUI-64>$I:<code>``, anywhere in the text (the Zigbee Alliance / CSA QR content, used
  by Ubisys, Danfoss, Inovelli, Ledvance and others, with other ``$``/``%`` fields around it);
* ``...$A:<EUI-64>$I:<code>`` (Aqara, after a ``G$M:`` header);
* ``<EUI-64>|<code>`` and ``|<EUI-64>|<code>|`` (Consciot, Müller-Licht, Innr; frient);
* ``HUE:Z:<code> M:<EUI-64> ...`` (Philips Hue);
* ``RB01SG<34 hex digits><EUI-64>DLK<code or link key>`` (Bosch): 36 digits are an install
  code with its CRC, 32 digits the device's link key itself;
* a bare install code, as :meth:`InstallCode.parse` reads it (no EUI-64).

The code must carry a valid CRC (05-3474 §4.6.3.4.1): a missing or wrong CRC is refused, never
recomputed. Errors never echo the code.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field

import zigpy.types as t

from zse.errors import DecodeError, InvalidInstallCode
from zse.installcode._code import InstallCode, parse_eui64

__all__ = ["DeviceLabel", "InvalidLabel", "LabelForm", "parse_label"]

_KEY_LENGTH = 16
_MAX_LABEL = 512  # QR codes of these labels are under 150 characters


class InvalidLabel(InvalidInstallCode):
    """A label or QR string that is neither an install code nor one of the known label forms."""


class LabelForm(enum.Enum):
    """Which printed form a :class:`DeviceLabel` was read from."""

    CODE = "install code"
    CSA = "Z:<EUI-64>$I:<code>"
    AQARA = "$A:<EUI-64>$I:<code>"
    PIPE = "<EUI-64>|<code>"
    PIPE_ENCLOSED = "|<EUI-64>|<code>|"
    HUE = "HUE:Z:<code> M:<EUI-64>"
    BOSCH = "RB01SG...<EUI-64>DLK<code or key>"


_HEX = "[0-9A-Fa-f]"
_EUI = f"({_HEX}{{16}})"
_VALUE = "([0-9A-Za-z]+)"  # checked by InstallCode.parse, which names the bad character
# (form, pattern, group of the EUI-64, group of the code); the first match wins
_FORMS: tuple[tuple[LabelForm, re.Pattern[str], int, int], ...] = (
    (LabelForm.BOSCH, re.compile(f"RB01SG{_HEX}{{34}}{_EUI}DLK{_VALUE}"), 1, 2),
    (LabelForm.HUE, re.compile(f"HUE:Z:{_VALUE} M:{_EUI}(?: .*)?"), 2, 1),
    (LabelForm.PIPE_ENCLOSED, re.compile(rf"\|{_EUI}\|{_VALUE}\|"), 1, 2),
    (LabelForm.PIPE, re.compile(rf"{_EUI}\|{_VALUE}"), 1, 2),
    (LabelForm.AQARA, re.compile(rf"G\$M:.*\$A:{_EUI}\$I:{_VALUE}"), 1, 2),
    (LabelForm.CSA, re.compile(rf"(?:.*[$%])?Z:{_EUI}\$I:{_VALUE}(?:[$%].*)?"), 1, 2),
)
_MARKERS = ("$", "|", "HUE:", "RB01SG", "Z:")


@dataclass(frozen=True, slots=True)
class DeviceLabel:
    """What a label gives: the device's EUI-64 (``None`` for a bare code), its install code
    (``None`` when the label carries the link key itself) and the form it was read from."""

    eui64: t.EUI64 | None
    install_code: InstallCode | None
    form: LabelForm
    _key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.install_code is None) == (self._key is None):
            raise ValueError("a device label has an install code or a link key, not both")
        if self._key is not None and len(self._key) != _KEY_LENGTH:
            raise ValueError(f"a link key is 16 bytes, got {len(self._key)}")

    @classmethod
    def with_link_key(cls, eui64: t.EUI64, key: bytes, form: LabelForm) -> DeviceLabel:
        """A label carrying the device's link key itself (no install code)."""
        return cls(eui64, None, form, bytes(key))

    @property
    def link_key(self) -> bytes:
        """The preconfigured Trust Center link key: the code's AES-MMO hash, or the key given."""
        if self.install_code is not None:
            return self.install_code.link_key
        assert self._key is not None
        return self._key

    def __repr__(self) -> str:
        eui = "no EUI-64" if self.eui64 is None else f"EUI-64 {self.eui64}"
        if self.install_code is not None:
            secret = repr(self.install_code)
        else:
            digest = hashlib.sha256(b"zse link key " + self.link_key).hexdigest()[:4]
            secret = f"link key, fingerprint {digest}"
        return f"<DeviceLabel {self.form.name}, {eui}, {secret}>"


def parse_label(text: str) -> DeviceLabel:
    """Read a printed label or QR string: one of the forms in the module docstring, or a bare
    install code.

    Raises :class:`~zse.errors.InvalidEui64` for a bad EUI-64,
    :class:`~zse.errors.InvalidInstallCode` for a bad code (length, character, CRC; the
    message names the form) and :class:`InvalidLabel` for text in no known form.
    """
    if not isinstance(text, str):
        raise InvalidLabel(f"a label must be given as text, not {type(text).__name__}")
    stripped = text.strip()
    if len(stripped) > _MAX_LABEL:
        raise InvalidLabel(f"label is {len(stripped)} characters; labels are under {_MAX_LABEL}")
    if "$" in stripped or "|" in stripped or stripped.startswith(("HUE:", "RB01SG")):
        for form, pattern, eui_group, code_group in _FORMS:
            match = pattern.fullmatch(stripped)
            if match is not None:
                return _from_match(form, match[eui_group], match[code_group])
    try:
        return DeviceLabel(None, InstallCode.parse(text), LabelForm.CODE)
    except InvalidInstallCode as exc:
        if not any(marker in stripped.upper() for marker in _MARKERS):
            raise
        forms = "; ".join(form.value for form in LabelForm if form is not LabelForm.CODE)
        raise InvalidLabel(f"not an install code, nor a label of a known form ({forms})") from exc


def _from_match(form: LabelForm, eui_text: str, value: str) -> DeviceLabel:
    eui64 = parse_eui64(eui_text)
    if form is LabelForm.BOSCH and len(value) == 2 * _KEY_LENGTH:
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise InvalidLabel(f"{form.value} label: the link key is not 32 hex digits") from None
        return DeviceLabel.with_link_key(eui64, key, form)
    try:
        code = InstallCode.parse(value)
    except DecodeError as exc:
        raise InvalidInstallCode(f"{form.value} label: {exc}") from None
    return DeviceLabel(eui64, code, form)
