"""Roles: the library's pieces composed into the devices of a Smart Energy HAN.

- :class:`~zse.roles.esi.EnergyServiceInterface`: the ESI / meter and Trust Center on any
  zigpy application (provisioning by install code, lifecycle, CBKE, price, messages, load
  control, time, inter-PAN price);
- :mod:`zse.roles.han`: in-home display, programmable thermostat and load control device for the
  simulator, joining with their install code, running CBKE, resyncing and reporting.

See docs/roles.md.
"""
