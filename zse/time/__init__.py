"""Time (ZCL 3.12 as SE 5.4.3 uses it): the Time server of the SE endpoint (:mod:`.service`)."""
