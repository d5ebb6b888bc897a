"""Extract the facts of zsmartsystems/com.zsmartsystems.zigbee's SE cluster XML into
``zsmartsystems-se-clusters.json`` (the oracle of ``tests/se/test_se_zsmartsystems_xml.py``).

Usage: ``python tests/vectors/extract_zsmartsystems.py GIT_DIR [COMMIT]``, where ``GIT_DIR`` is
a clone (or bare mirror) of the repository. Only facts are kept (cluster, command and attribute
ids, directions, field and attribute names and data types), never the files' descriptions:
the XML is EPL-1.0. The ``known_errors`` and ``settled`` members of an existing JSON are carried
over unchanged.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPOSITORY = "zsmartsystems/com.zsmartsystems.zigbee"
RESOURCES = "com.zsmartsystems.zigbee.autocode/src/main/resources"
#: The XML files of the clusters zse implements, by cluster id; zsmartsystems has no Calendar
#: (0x0707), Device Management (0x0708), Events (0x0709) or MDU Pairing (0x070A) file.
FILES = {
    "0x000A": "000A_Time.xml",
    "0x0700": "0700_Price.xml",
    "0x0701": "0701_DemandResponseAndLoadControl.xml",
    "0x0702": "0702_Metering.xml",
    "0x0703": "0703_Messaging.xml",
    "0x0704": "0704_SmartEnergyTunneling.xml",
    "0x0705": "0705_Prepayment.xml",
    "0x0800": "0800_KeyEstablishment.xml",
}
ABSENT = {"0x0707": "Calendar", "0x0708": "Device Management", "0x0709": "Events"}
OUT = Path(__file__).with_name("zsmartsystems-se-clusters.json")


def _name(node: ET.Element) -> str:
    return " ".join((node.findtext("name") or "").split())


def _fields(node: ET.Element) -> list[dict[str, str]]:
    """A command's or struct's fields in wire order: name, data type, and the struct class of
    a field typed by a ``<struct>`` of the file."""
    out = []
    for field in node.findall("field"):
        entry = {"name": _name(field), "type": field.get("type", "")}
        if not entry["type"]:
            entry["struct"] = field.get("class", "")
        out.append(entry)
    return out


def _attributes(cluster: ET.Element) -> list[dict[str, Any]]:
    """Every attribute, arrays expanded as zsmartsystems' generator expands them (the n-th of
    ``arraycount`` has id ``code + (n - arraystart) * arraystep`` and ``{{count}}`` = n)."""
    out = []
    for attr in cluster.findall("attribute"):
        code = int(attr.get("code", ""), 16)
        start, count = attr.get("arraystart"), attr.get("arraycount")
        step = int(attr.get("arraystep", "1"))
        numbers = range(int(start), int(start) + int(count)) if start and count else [None]
        for n in numbers:
            offset = 0 if n is None or start is None else (n - int(start)) * step
            name = _name(attr) if n is None else _name(attr).replace("{{count}}", str(n))
            out.append(
                {
                    "id": f"0x{code + offset:04X}",
                    "side": attr.get("side", ""),
                    "name": name,
                    "type": attr.get("type", ""),
                }
            )
    return out


def cluster_facts(text: str) -> dict[str, Any]:
    """The facts of one cluster file."""
    cluster = ET.fromstring(text)
    return {
        "name": _name(cluster),
        "commands": [
            {
                "id": f"0x{int(cmd.get('code', ''), 16):02X}",
                # zsmartsystems' "source": the side that sends the command
                "source": cmd.get("source", ""),
                "name": _name(cmd),
                "fields": _fields(cmd),
            }
            for cmd in cluster.findall("command")
        ],
        "attributes": _attributes(cluster),
        "structs": {s.get("class", ""): _fields(s) for s in cluster.findall("struct")},
    }


def main(git_dir: str, commit: str = "HEAD") -> None:
    def show(path: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", git_dir, "show", f"{commit}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    sha = subprocess.run(
        ["git", "--git-dir", git_dir, "rev-parse", commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    data = {
        "source": {
            "repository": REPOSITORY,
            "path": RESOURCES,
            "files": FILES,
            "commit": sha,
            "license": "EPL-1.0 (facts only: ids, directions, names, data types)",
            "absent": ABSENT,
        },
        "clusters": {
            cid: cluster_facts(show(f"{RESOURCES}/{name}")) for cid, name in FILES.items()
        },
        "known_errors": old.get("known_errors", []),
        "settled": old.get("settled", []),
    }
    OUT.write_text(dump(data))


def dump(data: dict[str, Any]) -> str:
    """JSON with each innermost object (a field, an attribute) on one line."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    flat = re.compile(r"\{\n\s+([^{}\[\]]*?)\n\s*\}")
    return (
        flat.sub(lambda m: "{" + " ".join(m[1].split("\n ")).replace("  ", "") + "}", text) + "\n"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
