"""A base64 tar stream like the origin gather script's: bytes members are regular files, str
members are symlinks to that target."""

from __future__ import annotations

import base64
import io
import tarfile


def tar_b64(*members: tuple[str, bytes | str]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, value in members:
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return base64.b64encode(buf.getvalue()).decode()
