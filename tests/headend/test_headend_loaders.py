"""Garbage into the headend's loaders (hypothesis): stored records of any shape are quarantined,
never raised, and the good ones load; any ``headend.toml`` text is a configuration or a
``HeadendConfigError`` naming the file (issue #18, the quality rules)."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zse.headend.pki import HeadendConfigError, init_directory, load_config
from zse.headend.store import DeviceOwner, HeadendStore
from zse.store import Batch, Store

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_NAMESPACES = st.sampled_from(
    ["headend.devices", "headend.groups", "headend.sends", "headend.outcomes"]
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_NAMESPACES, st.text(max_size=12), _JSON), max_size=6))
def test_stored_garbage_is_quarantined(records: list[tuple[str, str, Any]]) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = await Store.open(Path(tmp) / "h.sqlite")
            try:
                good = DeviceOwner(
                    eui64="000D6F000B0100FE", retailer="r", meter="m", device_type="smart appliance"
                )
                loaded = await HeadendStore.open(store)
                await loaded.put_device(good)
                batch = Batch()
                for namespace, key, value in records:
                    if (namespace, key) != ("headend.devices", good.eui64):
                        batch.put(namespace, key, value)
                if len(batch):
                    await store.commit(batch)
                again = await HeadendStore.open(store)
                assert again.devices[good.eui64] == good
            finally:
                await store.close()

    asyncio.run(run())


def test_a_config_with_garbage_is_an_error_naming_the_file(tmp_path: Path) -> None:
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    original = config.read_text()
    assert load_config(config).port == 8443

    @settings(max_examples=30, deadline=None)
    @given(st.text(max_size=60), st.integers(0, len(original)))
    def inner(noise: str, at: int) -> None:
        config.write_text(original[:at] + noise + original[at:])
        refused: HeadendConfigError | None = None
        try:
            load_config(config)
        except HeadendConfigError as exc:
            refused = exc
        assert refused is None or str(config) in str(refused)

    inner()


def test_numbers_and_nesting_out_of_reach_are_config_errors(tmp_path: Path) -> None:
    """What tomllib reads but the headend cannot use (NaN, infinity, an integer past a float,
    one past the interpreter's digits, nesting past the recursion limit) is one error naming
    the file, not a rate of NaN nor an exception of the standard library's."""
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    original = config.read_text()
    assert "\nrequests_per_second = 50\n" in original
    for limits, why in [
        ("requests_per_second = nan", "finite"),
        ("requests_per_second = inf", "finite"),
        ("requests_per_second = -inf", "finite"),
        ("requests_per_second = 1" + "0" * 400, "too large"),
        ("burst = 1" + "0" * 5000, "too many digits"),
        ("x = " + "[" * 5000, "nested too deep"),
    ]:
        config.write_text(original.replace("\nrequests_per_second = 50\n", f"\n{limits}\n"))
        with pytest.raises(HeadendConfigError, match=why) as error:
            load_config(config)
        assert str(config) in str(error.value)


def test_a_misspelt_key_or_an_empty_retailer_id_is_a_config_error(tmp_path: Path) -> None:
    """A misspelt key was ignored, its default silently used ([limitz], requests_per_secnd);
    a retailer of id "" was accepted."""
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    original = config.read_text()
    for before, after, why in [
        ("[limits]", "[limitz]", "unknown key 'limitz'"),
        ("burst =", "brust =", "[limits] unknown key 'brust'"),
        ('host = "127.0.0.1"', 'hostname = "127.0.0.1"', "[server] unknown key 'hostname'"),
        ('ca = "ca.pem"', 'ca = "ca.pem"\ncolour = 1', "[[retailers]] unknown key 'colour'"),
        ('id = "retailer-a"', 'id = " "', "a retailer's id is empty"),
    ]:
        assert before in original, before
        config.write_text(original.replace(before, after, 1))
        with pytest.raises(HeadendConfigError, match=re.escape(why)) as error:
            load_config(config)
        assert str(config) in str(error.value)
