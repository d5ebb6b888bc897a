"""Time (ZCL 3.12 as SE 5.4.3 uses it): time zone and daylight saving, sans-IO
(:mod:`.core`), and the Time server and client read of the SE endpoint (:mod:`.service`)."""
