"""The retailer HAN service (issue #18): provisioning, groups and by-group sends over the ESIs.

- :mod:`zse.headend.core`: validation, outcomes, retries and rate limits, sans-IO;
- :mod:`zse.headend.store`: the headend's records (owners, groups, sends, outcomes) in a zse store;
- :mod:`zse.headend.service`: the operations over the meters' ESIs (asyncio);
- :mod:`zse.headend.pki`: the test PKI of ``zse headend init``, the mutual-TLS context and the
  mapping of a verified client certificate to its retailer;
- :mod:`zse.headend.web`: the HTTPS API (OpenAPI at ``/openapi.json``) and the portal (aiohttp);
- :mod:`zse.headend.signatures`: RFC 9421 signed requests, for clients without a certificate;
- :mod:`zse.headend.run`: the headend assembled and served over given meters;
- :mod:`zse.headend.sim`: meters with HAN devices on the simulator (``zse headend serve --sim``).
"""

from zse.headend.core import *  # noqa: F403
from zse.headend.core import __all__ as __all__
