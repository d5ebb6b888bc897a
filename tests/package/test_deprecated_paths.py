"""#13 (feature packages): the old module paths still work for one release, with a warning."""

from __future__ import annotations

import importlib
import warnings

import pytest

import zse.clusters
import zse.services
from zse.se.ids import DRLC, MESSAGING, PRICE

#: old path -> new home (docs/adr/0008-feature-packages.md)
MOVED = {
    **{f"zse.services.{old}": new for old, new in zse.services.MOVED.items()},
    **{f"zse.clusters.{old}": new for old, new in zse.clusters.MOVED.items()},
}


def test_every_moved_module_has_its_old_path():
    assert len(MOVED) == 16
    assert MOVED["zse.services.drlc"] == "zse.drlc.service"
    assert MOVED["zse.clusters.drlc"] == "zse.drlc.wire"
    assert MOVED["zse.services.registry"] == "zse.provisioning.registry"


@pytest.mark.parametrize(("old", "new"), MOVED.items())
def test_old_path_warns_and_gives_the_same_objects(old: str, new: str):
    shim, home = importlib.import_module(old), importlib.import_module(new)
    names = list(getattr(home, "__all__", ())) or ["attribute", "cluster_id", "command"]
    assert shim.__all__ == list(getattr(home, "__all__", ()))
    for name in names:
        with pytest.warns(
            DeprecationWarning, match=rf"{old} is deprecated: import {name} from {new}"
        ):
            assert getattr(shim, name) is getattr(home, name)
    with pytest.raises(AttributeError, match=old):
        _ = shim.no_such_name
    assert importlib.import_module(old) is shim  # a second import finds the same module


def test_the_warning_points_at_the_importing_line():
    """stacklevel=2: the warning names the user's file, not the shim."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from zse.services.drlc import DrlcServer  # noqa: PLC0415
    from zse.drlc import service  # noqa: PLC0415

    assert DrlcServer is service.DrlcServer
    assert [w.filename for w in caught] == [__file__]
    assert issubclass(caught[0].category, DeprecationWarning)


@pytest.mark.parametrize(
    ("name", "new"),
    [
        ("Drlc", "zse.drlc.wire"),
        ("Messaging", "zse.messaging.wire"),
        ("Price", "zse.price.wire"),
        ("command_def", "zse.zcl.codec"),
        ("decode_command", "zse.zcl.codec"),
        ("encode_command", "zse.zcl.codec"),
    ],
)
def test_clusters_package_names_warn_and_are_the_same(name: str, new: str):
    with pytest.warns(DeprecationWarning, match=rf"import {name} from {new}"):
        assert getattr(zse.clusters, name) is getattr(importlib.import_module(new), name)


def test_clusters_se_clusters_table_still_resolves():
    from zse.drlc.wire import Drlc  # noqa: PLC0415
    from zse.messaging.wire import Messaging  # noqa: PLC0415
    from zse.price.wire import Price  # noqa: PLC0415

    with pytest.warns(DeprecationWarning, match="SE_CLUSTERS is deprecated"):
        table = zse.clusters.SE_CLUSTERS
    assert table == {PRICE: Price, DRLC: Drlc, MESSAGING: Messaging}
    with pytest.raises(AttributeError):
        _ = zse.clusters.NoSuchName


@pytest.mark.parametrize(
    ("package", "core"),
    [
        ("zse.drlc", "zse.drlc.core"),
        ("zse.messaging", "zse.messaging.core"),
        ("zse.price", "zse.price.core"),
        ("zse.provisioning", "zse.provisioning.lifecycle"),
    ],
)
def test_feature_package_re_exports_its_core_without_warning(package: str, core: str):
    """``from zse.drlc import X`` keeps working unchanged: the same import path, no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outer, inner = importlib.import_module(package), importlib.import_module(core)
        assert outer.__all__ == inner.__all__
        for name in inner.__all__:
            assert getattr(outer, name) is getattr(inner, name)
