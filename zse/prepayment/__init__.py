"""Prepayment (SE 1.2 D.7): the wire (:mod:`zse.prepayment.wire`), the sans-IO prepay account
(:mod:`zse.prepayment.core`), the ZCL-frame cores (:mod:`zse.prepayment.protocol`) and the
asyncio shells (:mod:`zse.prepayment.service`)."""
