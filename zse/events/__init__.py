"""Events (SE 1.2 D.11): the wire (:mod:`zse.events.wire`), the sans-IO event log
(:mod:`zse.events.core`), the ZCL-frame cores (:mod:`zse.events.protocol`) and their asyncio
shells (:mod:`zse.events.service`)."""
