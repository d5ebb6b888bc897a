"""Install-code tests; the async ones (the ``zse esi`` import) run on the virtual-time loop."""

from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]
