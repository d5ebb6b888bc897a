"""Install-code tests; the async ones (the ``zse esi`` import) run on the virtual-time loop;
real ``zse installcode --csv`` runs share :mod:`tests.installcode.csv_runs`'s fixtures."""

from tests.installcode.csv_runs import complete, devices, start
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["complete", "devices", "pytest_asyncio_loop_factories", "start"]
