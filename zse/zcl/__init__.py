"""The ZCL runtime zse's services share: codec, endpoint runtime, delivery rule and events."""
