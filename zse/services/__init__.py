"""asyncio services binding zse's cores to zigpy and to the simulated HAN devices."""
