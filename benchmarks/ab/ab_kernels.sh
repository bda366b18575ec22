#!/usr/bin/env bash
# Build ab_kernels: the C kernels of git revision REV ("old") and of the
# working tree ("new"), both at one instruction-set level, linked side by side
# (see ab_kernels.c). Needs gcc with OpenMP. Then run, e.g.:
#   benchmarks/ab/ab_kernels.sh HEAD~1 && AB_COLD=1 /tmp/lsm_ab/ab_kernels log_softmax f32 4096 1024 31
# LEVEL: avx2 (default), avx512 or base. OLDFLAGS, NEWFLAGS: more compiler
# flags for the old or the new build (e.g. NEWFLAGS=-DLSM_COL_BLOCK_CACHE=0
# to try a tuning constant of src_c/lsm_kernels.c without editing it).
set -euo pipefail
REV=${1:?usage: ab_kernels.sh REV [OUTDIR]}
OUT=${2:-/tmp/lsm_ab}
ROOT=$(git rev-parse --show-toplevel)
case "${LEVEL:-avx2}" in
  avx2) ISA="-march=x86-64-v3 -ffp-contract=fast -DLSM_VEC_BYTES=32" ;;
  avx512) ISA="-march=x86-64-v4 -ffp-contract=fast -mprefer-vector-width=512 -DLSM_VEC_BYTES=64" ;;
  base) ISA="-march=x86-64" ;;
  *) echo "LEVEL: avx2, avx512 or base" >&2; exit 2 ;;
esac
# the flags of src_c/meson.build (release build: -O3)
FLAGS="-O3 -mtune=generic $ISA -fno-math-errno -fno-trapping-math -fopenmp-simd -fopenmp"
rm -rf "$OUT" && mkdir -p "$OUT/old"
git -C "$ROOT" archive "$REV" src_c | tar -x -C "$OUT/old"
gcc $FLAGS ${OLDFLAGS:-} -DLSM_ISA_SFX=_old -I"$OUT/old/src_c" -c "$OUT/old/src_c/lsm_kernels.c" -o "$OUT/old.o"
gcc $FLAGS ${NEWFLAGS:-} -DLSM_ISA_SFX=_new -I"$ROOT/src_c" -c "$ROOT/src_c/lsm_kernels.c" -o "$OUT/new.o"
gcc -O2 -fopenmp -I"$ROOT/src_c" -c "$ROOT/src_c/lsm_threads.c" -o "$OUT/threads.o"
gcc -O2 -Wall -Wextra -I"$ROOT/src_c" "$ROOT/benchmarks/ab/ab_kernels.c" \
    "$OUT/old.o" "$OUT/new.o" "$OUT/threads.o" -fopenmp -lm -o "$OUT/ab_kernels"
echo "built $OUT/ab_kernels (old: $REV, new: working tree, level ${LEVEL:-avx2})"
