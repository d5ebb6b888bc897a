"""Put a client certificate and its key into an NSS database, as ``pk12util`` would, through the
system's NSS library (libnss3, which Chromium itself uses on Linux to find client certificates).

Run in its own process (NSS is initialised once per process)::

    python tests/headend/nssdb.py HOME/.pki/nssdb CERT.pem KEY.pem NICKNAME

The database is created (SQLite format) with an empty password, the key imported from its PKCS#8
form and the certificate imported beside it (``PK11_ImportDERCertForKey``). Test use only.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_KU_ALL = 0xFF


class _SecItem(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("data", ctypes.c_void_p), ("len", ctypes.c_uint)]


def _item(data: bytes) -> tuple[_SecItem, ctypes.Array[ctypes.c_char]]:
    buffer = ctypes.create_string_buffer(data, len(data))
    return _SecItem(0, ctypes.cast(buffer, ctypes.c_void_p), len(data)), buffer


def import_client(directory: Path, cert_pem: Path, key_pem: Path, nickname: str) -> None:
    """Create ``directory`` as an NSS database holding the certificate and key."""
    directory.mkdir(parents=True, exist_ok=True)
    nss = ctypes.CDLL("libnss3.so")
    nss.NSS_InitReadWrite.argtypes = [ctypes.c_char_p]
    nss.PK11_GetInternalKeySlot.restype = ctypes.c_void_p
    nss.PK11_NeedUserInit.argtypes = [ctypes.c_void_p]
    nss.PK11_InitPin.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    nss.PK11_ImportDERPrivateKeyInfoAndReturnKey.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_SecItem),
        ctypes.POINTER(_SecItem),
        ctypes.POINTER(_SecItem),
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
    ]
    nss.PK11_ImportDERCertForKey.restype = ctypes.c_void_p  # the slot, NULL on failure
    nss.PK11_ImportDERCertForKey.argtypes = [
        ctypes.POINTER(_SecItem),
        ctypes.c_char_p,
        ctypes.c_void_p,
    ]
    if nss.NSS_InitReadWrite(f"sql:{directory}".encode()) != 0:
        raise RuntimeError("NSS_InitReadWrite failed")
    slot = nss.PK11_GetInternalKeySlot()
    if nss.PK11_NeedUserInit(slot) and nss.PK11_InitPin(slot, b"", b"") != 0:
        raise RuntimeError("PK11_InitPin failed")
    key = serialization.load_pem_private_key(key_pem.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    der_key, _k = _item(pkcs8)
    name, _n = _item(nickname.encode())
    public, _p = _item(point)
    handle = ctypes.c_void_p()
    status = nss.PK11_ImportDERPrivateKeyInfoAndReturnKey(
        slot, der_key, name, public, 1, 1, _KU_ALL, ctypes.byref(handle), None
    )
    if status != 0:
        raise RuntimeError("importing the private key failed")
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    der_cert, _c = _item(cert.public_bytes(serialization.Encoding.DER))
    if not nss.PK11_ImportDERCertForKey(der_cert, nickname.encode(), None):
        raise RuntimeError("importing the certificate failed")
    nss.NSS_Shutdown()


if __name__ == "__main__":
    import_client(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
