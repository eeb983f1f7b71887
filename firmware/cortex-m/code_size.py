#!/usr/bin/env python3
"""Flash bytes of the Cortex-M image by component, from the GNU ld map file.

    python3 firmware/cortex-m/code_size.py firmware/build/cortex-m/metabnn_board.map

arm-none-eabi-size reports the whole .text, which here is mostly data: the embedded model
image and the test images. This splits the linked (after --gc-sections) input sections of the
flash output sections (.text, which also holds .rodata, and .ARM.exidx) into: the metabnn
library (firmware/src), the board program (firmware/cortex-m), libgcc/libc helpers, the model
image and the test images.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict

FLASH_OUTPUT = {".text", ".ARM.exidx"}
# an input section: " .name [addr size file]" (addr/size/file may be on the next line)
ENTRY = re.compile(r"^ (\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")


def component(section: str, origin: str) -> str:
    if section.endswith("board_model_words"):
        return "model image (board_model_words)"
    if section.endswith(("board_images", "board_labels")):
        return "test images and labels"
    if re.search(r"/lib/[^/()]+\.o$", origin):  # CM_OUT/lib/*.o, not the toolchain's lib folders
        return "metabnn library (firmware/src)"
    if re.search(r"/board/[^/()]+\.o$", origin):
        return "board program (firmware/cortex-m)"
    return "libgcc / libc helpers"


def main(argv) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        lines = open(argv[1]).read().splitlines()
    except OSError as e:
        print(f"code_size: {e}", file=sys.stderr)
        return 1
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        print(f"code_size: {argv[1]} is not a GNU ld map file", file=sys.stderr)
        return 1
    sizes = defaultdict(int)
    out_total = 0
    out, pending = None, None
    for line in lines[start:]:
        if line and not line.startswith(" "):  # an output section header (".text  0x0  0x..")
            f = line.split()
            out = f[0]
            if out in FLASH_OUTPUT and len(f) >= 3:
                out_total += int(f[2], 16)
            pending = None
            continue
        if out not in FLASH_OUTPUT:
            continue
        m = ENTRY.match(line)
        if m and (m.group(1) or pending):
            name = m.group(1) or pending
            sizes[component(name, m.group(4))] += int(m.group(3), 16)
            pending = None
        elif re.fullmatch(r" \S+", line):  # a long input section name alone on its line
            pending = line.strip()
    sizes["alignment padding"] = out_total - sum(sizes.values())
    total = out_total
    for name, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"{n:>9,}  {name}")
    print(f"{total:>9,}  total flash (.text + .ARM.exidx)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
