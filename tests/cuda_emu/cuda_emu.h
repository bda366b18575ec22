/*
 * cuda_emu.h -- just enough of CUDA to run lsm_ext's kernels on the CPU, for
 * tests of their logic on machines without a GPU (tests/test_cuda_emu.py).
 *
 * Every thread of a block is a host thread; blocks run one after another,
 * so a function's static variables stand for __shared__ memory.
 * __syncthreads is a barrier over the block's threads, and warp shuffles
 * exchange values through a per-warp buffer between two barriers over the
 * warp's 32 threads (so a shuffle that not all 32 lanes reach hangs, as it
 * would be undefined on a GPU). Timing says nothing about a GPU.
 */
#ifndef CUDA_EMU_H
#define CUDA_EMU_H

#include <barrier>
#include <cstring>
#include <functional>
#include <math.h>
#include <memory>
#include <thread>
#include <vector>

struct emu_dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local emu_dim3 threadIdx, blockIdx;
inline emu_dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct emu_warp {
    std::barrier<> bar{32};
    unsigned char buf[32][8];
};
inline std::barrier<> *emu_block_bar;
inline std::vector<std::unique_ptr<emu_warp>> emu_warps;

inline void __syncthreads() { emu_block_bar->arrive_and_wait(); }

inline int emu_tid() { return (int)(threadIdx.x + threadIdx.y * blockDim.x); }

template <typename V>
inline V __shfl_xor_sync(unsigned, V v, int off, int width = 32) {
    const int t = emu_tid(), lane = t % 32;
    emu_warp &w = *emu_warps[t / 32];
    std::memcpy(w.buf[lane], &v, sizeof v);
    w.bar.arrive_and_wait();
    const int src = (lane & ~(width - 1)) | ((lane ^ off) & (width - 1));
    V r;
    std::memcpy(&r, w.buf[src], sizeof r);
    w.bar.arrive_and_wait();
    return r;
}

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline double __longlong_as_double(long long i) {
    double d;
    std::memcpy(&d, &i, 8);
    return d;
}

/* Runs kernel() once per thread of every block of grid x block. */
inline void emu_launch(emu_dim3 grid, emu_dim3 block,
                       const std::function<void()> &kernel) {
    gridDim = grid;
    blockDim = block;
    const int nt = (int)(block.x * block.y * block.z);
    for (unsigned by = 0; by < grid.y; by++) {
        for (unsigned bx = 0; bx < grid.x; bx++) {
            std::barrier<> bar(nt);
            emu_block_bar = &bar;
            emu_warps.clear();
            for (int w = 0; w < (nt + 31) / 32; w++) {
                emu_warps.push_back(std::make_unique<emu_warp>());
            }
            std::vector<std::thread> th;
            for (int t = 0; t < nt; t++) {
                th.emplace_back([&, t] {
                    threadIdx = {(unsigned)t % block.x, (unsigned)t / block.x, 0};
                    blockIdx = {bx, by, 0};
                    kernel();
                });
            }
            for (auto &x : th) {
                x.join();
            }
        }
    }
}

#endif
