"""Device Management (SE 1.2 D.10): the wire (:mod:`zse.devmgmt.wire`), the sans-IO core
(:mod:`zse.devmgmt.core`), the ZCL-frame cores (:mod:`zse.devmgmt.protocol`) and their
asyncio shells (:mod:`zse.devmgmt.service`)."""
