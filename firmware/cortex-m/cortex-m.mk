# Cortex-M4 image for QEMU's Arm MPS2 AN386 board; included by firmware/Makefile (paths are
# relative to firmware/). See docs/CORTEX_M.md.
#
#   make cortex-m       build/cortex-m/metabnn_board.elf (and its arm-none-eabi-size)
#   make cortex-m-run   run it: qemu-system-arm -M mps2-an386, semihosting, -icount shift=0
#
# Inputs (absolute paths, or relative to firmware/):
#   CM_MODEL=FILE.mbnn  the embedded model (default: a seeded random 784-128-128-10 model)
#   CM_CASES=FILE.npz   test images and labels (images uint8 [N, K0], labels [N]); or
#   CM_MNIST=1          the first CM_COUNT MNIST test images (default: seeded random pixels)
#   CM_TASK=fmnist      the first CM_COUNT test images of that data set
#   CM_COUNT=4 CM_STEPS=4   test images, learning steps
#   CM_ADAPT=1          learn with stream-adaptive normalization on (default: frozen)
#   CM_OUT=DIR          build folder (default build/cortex-m)
#   CM_EXTRA_CFLAGS=... more flags for the board program (e.g. -DBOARD_WS_BYTES=N)
#   CM_LIB_CFLAGS=...   more flags for the library (e.g. -DMBNN_PORTABLE_POPCOUNT)
# (a flag change needs a fresh CM_OUT or make clean: make does not track flags)

CM_PREFIX ?= arm-none-eabi-
CM_CC := $(CM_PREFIX)gcc
CM_SIZE := $(CM_PREFIX)size
PYTHON ?= python3
QEMU ?= qemu-system-arm
CM_OUT ?= $(BUILD)/cortex-m
CM_COUNT ?= 4
CM_STEPS ?= 4
CM_DIR := cortex-m

CM_ARCH := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
# The library is built with exactly the flags the host build uses for warnings and aliasing;
# -Os for flash, sections so the linker drops what the program does not call.
CM_CFLAGS := -std=c99 -Wall -Wextra -Werror -Os -g -fno-strict-aliasing -ffunction-sections -fdata-sections \
             $(CM_ARCH) -Iinclude
CM_LDFLAGS := $(CM_ARCH) -nostartfiles --specs=nano.specs -Wl,--gc-sections -Wl,--fatal-warnings \
              -Wl,-Map=$(CM_OUT)/metabnn_board.map -T $(CM_DIR)/mps2_an386.ld
# Semihosting output to stdout (QEMU's own messages stay on stderr); -icount shift=0: one
# instruction per ns of virtual time, so SysTick ticks count instructions (cycles.h).
CM_QEMU_FLAGS := -M mps2-an386 -display none -serial none -monitor none -chardev stdio,id=semihost \
                 -semihosting-config enable=on,target=native,chardev=semihost -icount shift=0

CM_BOARD_SRC := startup.c semihost.c console.c cycles.c stack_usage.c main.c
CM_BOARD_HDR := $(addprefix $(CM_DIR)/,semihost.h console.h cycles.h stack_usage.h)
CM_LIB_OBJ := $(patsubst src/%.c,$(CM_OUT)/lib/%.o,$(LIB_SRC))
CM_BOARD_OBJ := $(patsubst %.c,$(CM_OUT)/board/%.o,$(CM_BOARD_SRC))
CM_ELF := $(CM_OUT)/metabnn_board.elf
CM_GEN := $(CM_OUT)/gen
CM_GEN_ARGS := $(if $(CM_MODEL),--model $(abspath $(CM_MODEL))) $(if $(CM_CASES),--cases $(abspath $(CM_CASES))) \
               $(if $(CM_MNIST),--mnist) $(if $(CM_TASK),--task $(CM_TASK)) $(if $(CM_ADAPT),--adapt) --count $(CM_COUNT) --steps $(CM_STEPS)

.PHONY: cortex-m-run cm-toolchain cm-force

cm-toolchain:
	@command -v $(CM_CC) >/dev/null || { echo "make cortex-m: $(CM_CC) not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)" >&2; exit 1; }

cortex-m: cm-toolchain $(CM_ELF)
	$(CM_SIZE) $(CM_ELF)

cortex-m-run: cortex-m
	@command -v $(QEMU) >/dev/null || { echo "make cortex-m-run: $(QEMU) not found (apt-get install qemu-system-arm)" >&2; exit 1; }
	$(QEMU) $(CM_QEMU_FLAGS) -kernel $(CM_ELF)

# The script runs every time (its inputs are files and options make cannot see) but rewrites a
# header only when its text changes, so main.o is rebuilt only then.
$(CM_GEN)/board_cases.h: cm-force | $(CM_GEN)
	$(PYTHON) $(CM_DIR)/gen_inputs.py $(CM_GEN) $(CM_GEN_ARGS)
$(CM_GEN)/board_model.h: $(CM_GEN)/board_cases.h
	@:

$(CM_OUT)/lib/%.o: src/%.c $(LIB_HDR) | $(CM_OUT)/lib cm-toolchain
	$(CM_CC) $(CM_CFLAGS) $(CM_LIB_CFLAGS) -c $< -o $@
$(CM_OUT)/board/main.o: $(CM_GEN)/board_model.h $(CM_GEN)/board_cases.h
$(CM_OUT)/board/%.o: $(CM_DIR)/%.c $(CM_BOARD_HDR) include/metabnn.h | $(CM_OUT)/board cm-toolchain
	$(CM_CC) $(CM_CFLAGS) $(CM_EXTRA_CFLAGS) -I$(CM_DIR) -I$(CM_GEN) -c $< -o $@

$(CM_ELF): $(CM_BOARD_OBJ) $(CM_LIB_OBJ) $(CM_DIR)/mps2_an386.ld
	$(CM_CC) $(CM_LDFLAGS) $(CM_BOARD_OBJ) $(CM_LIB_OBJ) -o $@

$(CM_OUT)/lib $(CM_OUT)/board $(CM_GEN):
	mkdir -p $@
