"""Smart Energy cluster wire definitions for zigpy (attached explicitly, never registered)."""
