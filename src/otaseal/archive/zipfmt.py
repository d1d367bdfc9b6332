"""The zip container's fixed values: record layouts, signatures, flags and limits.

The writer (:mod:`otaseal.archive.packing`) and the reader (:mod:`otaseal.archive.extraction`)
share them, so what pack writes and what extract accepts cannot drift apart. Plain zip 2.0: no
ZIP64, no encryption, stored or deflated entries only.
"""

from __future__ import annotations

import stat
import struct

ZIP32_MAX = 0xFFFFFFFE  # 0xFFFFFFFF means "see ZIP64", which we neither write nor need
MAX_ENTRIES = 0xFFFE
MAX_NAME = 0xFFFF
LOCAL = struct.Struct("<IHHHHHIIIHH")
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
END = struct.Struct("<IHHHHIIH")
LOCAL_SIGNATURE = 0x04034B50
CENTRAL_SIGNATURE = 0x02014B50
END_SIGNATURE = 0x06054B50
VERSION_NEEDED = 20  # 2.0: deflate
VERSION_MADE_BY = (3 << 8) | 20  # Unix, so readers honour the mode in external_attr
FLAG_UTF8 = 0x0800
DOS_TIME = 0
DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
FILE_ATTR = (stat.S_IFREG | 0o644) << 16
DOS_DIRECTORY = 0x10
ENCRYPTION_FLAGS = 0x0001 | 0x0040 | 0x2000  # traditional, strong, masked central directory
ALLOWED_FLAGS = 0x0002 | 0x0004 | 0x0008 | FLAG_UTF8  # deflate options, descriptor, UTF-8
